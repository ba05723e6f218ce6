"""The chart's dashboards and alerts: off by default; the dashboard ConfigMaps as Grafana's
sidecar expects them; the dashboards in the chart are what tools/dashboards/spec.py writes;
every alert has a runbook section in docs/operations.md; and the rules pass Debian's real
`promtool check rules` and `promtool test rules` (series for each alert, firing and not).

`promtool test rules` compares annotations exactly, so the rules it tests have their
annotations dropped (they are checked here and by `promtool check rules`); expressions,
`for` and labels are what it tests.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.chart.conftest import CHART, PROMETHEUS_API, ROOT, Manifest
from tests.prometheus import prometheus_binary
from tools.dashboards.spec import render_all

MONITORING = CHART / "ci" / "monitoring-values.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"
ALERTS = ("ParleyJoinErrorRatioHigh", "ParleyJoinLatencyHigh", "ParleySignalingErrorRatioHigh",
          "ParleySignalingFanoutLatencyHigh", "ParleyRelayFleetNearCapacity", "ParleyNoLiveRelay",
          "ParleyMetricsAggregationLagging", "ParleyDiagnosticRecordPastRetention")
JOIN = 'service="rooms",route="/api/rooms/{name}/join",status="200"'


def _rule(manifests: tuple[Manifest, ...]) -> Manifest:
    (rule,) = [m for m in manifests if m["kind"] == "PrometheusRule"]
    return rule


def _rules(rule: Manifest) -> list[dict[str, Any]]:
    return [r for g in rule["spec"]["groups"] for r in g["rules"]]


def test_monitoring_off_by_default(render: Any) -> None:
    manifests = render(None, "--api-versions", PROMETHEUS_API)
    kinds = {m["kind"] for m in manifests}
    assert "PrometheusRule" not in kinds
    assert not [m for m in manifests if m["kind"] == "ConfigMap"
                and m["metadata"]["labels"].get("app.kubernetes.io/component") == "dashboards"]


def test_dashboards_in_chart_match_spec() -> None:
    expected = render_all()
    found = {p.name: p.read_text() for p in (CHART / "dashboards").glob("*.json")}
    assert found == expected, "run: python -m tools.dashboards.spec"


def test_dashboard_configmaps_for_the_sidecar(render: Any) -> None:
    manifests = render(MONITORING, "--set", "dashboards.namespace=monitoring",
                       "--set", "dashboards.label=my_dashboards", "--set",
                       "dashboards.labelValue=yes")
    maps = [m for m in manifests if m["kind"] == "ConfigMap"
            and m["metadata"]["labels"].get("app.kubernetes.io/component") == "dashboards"]
    assert {m["metadata"]["name"] for m in maps} == {
        f"parley-dashboard-{n}" for n in ("calls", "relays", "sfus", "signaling", "metrics-ingest",
                                          "logpurge")}
    for m in maps:
        assert m["metadata"]["namespace"] == "monitoring"
        assert m["metadata"]["labels"]["my_dashboards"] == "yes"
        assert m["metadata"]["annotations"] == {"grafana_folder": "Parley"}
        ((key, text),) = m["data"].items()
        board = json.loads(text)
        assert key == f"{board['uid']}.json" and board["panels"]
    relays = next(json.loads(t) for m in maps for t in m["data"].values()
                  if "relays" in m["metadata"]["name"])
    consts = {v["name"]: v["query"] for v in relays["templating"]["list"]
              if v["type"] == "constant"}
    assert consts == {"target": "150", "max_relays": "4"}  # from ci/monitoring-values.yaml


def test_rules_every_alert_has_its_runbook_section(render: Any) -> None:
    rules = _rules(_rule(render(MONITORING)))
    assert sorted(r["alert"] for r in rules) == sorted(ALERTS)
    headings = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", OPERATIONS.read_text(), re.M)}
    for r in rules:
        url = r["annotations"]["runbook_url"]
        base, _, anchor = url.partition("#")
        assert base.endswith("/docs/operations.md"), url
        assert anchor == r["alert"].lower() and anchor in headings, url
        assert r["annotations"]["summary"] and r["labels"]["severity"] in ("warning", "critical")


def test_rules_without_relays_have_no_relay_alerts(render: Any) -> None:
    names = {r["alert"] for r in _rules(_rule(render(MONITORING, "--set", "relays.enabled=false")))}
    assert "ParleyNoLiveRelay" not in names and "ParleyRelayFleetNearCapacity" not in names


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([prometheus_binary("promtool"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)


def test_promtool_check_rules(render: Any, tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": _rule(render(MONITORING))[
        "spec"]["groups"]}))
    proc = _promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in proc.stdout + proc.stderr


def _case(alert: str, series: dict[str, str], *, fires_at: str | None,
          quiet_at: str = "3m", severity: str = "warning") -> dict[str, Any]:
    """One promtool test: the alert is silent at `quiet_at` and fires at `fires_at` (or
    stays silent there too when `fires_at` is None)."""
    checks: list[dict[str, Any]] = [{"eval_time": quiet_at, "alertname": alert, "exp_alerts": []}]
    if fires_at is None:
        checks.append({"eval_time": "25m", "alertname": alert, "exp_alerts": []})
    else:
        checks.append({"eval_time": fires_at, "alertname": alert,
                       "exp_alerts": [{"exp_labels": {"severity": severity}}]})
    return {"interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series.items()],
            "alert_rule_test": checks}


def _buckets(metric: str, labels: str, counts: dict[str, str]) -> dict[str, str]:
    sep = "," if labels else ""
    return {f'{metric}_bucket{{{labels}{sep}le="{le}"}}': v for le, v in counts.items()}


# ci/monitoring-values.yaml: at most 4 relays x 150 target allocations -> 480 is 80 %.
CASES = [
    _case("ParleyJoinErrorRatioHigh", {
        'parley_rooms_joins_total{result="ok"}': "0+100x30",
        'parley_rooms_joins_total{result="error"}': "0+5x30"},
        fires_at="16m", severity="critical"),
    _case("ParleyJoinErrorRatioHigh", {
        'parley_rooms_joins_total{result="ok"}': "0+1000x30",
        'parley_rooms_joins_total{result="error"}': "0+1x30",
        'parley_rooms_joins_total{result="full"}': "0+500x30"}, fires_at=None),
    _case("ParleyJoinLatencyHigh", _buckets(
        "parley_http_request_duration_seconds", JOIN,
        {"0.1": "0x30", "1": "0x30", "2.5": "0+10x30", "+Inf": "0+10x30"}), fires_at="16m"),
    _case("ParleyJoinLatencyHigh", _buckets(
        "parley_http_request_duration_seconds", JOIN,
        {"0.1": "0+10x30", "1": "0+10x30", "2.5": "0+10x30", "+Inf": "0+10x30"}),
        fires_at=None),
    _case("ParleySignalingErrorRatioHigh", {
        'parley_signaling_closes_total{code="1011"}': "0+5x30",
        "parley_signaling_sockets_accepted_total": "0+100x30"},
        fires_at="16m", severity="critical"),
    _case("ParleySignalingErrorRatioHigh", {
        'parley_signaling_closes_total{code="1011"}': "0x30",
        'parley_signaling_closes_total{code="1013"}': "0+50x30",
        "parley_signaling_sockets_accepted_total": "0+100x30"}, fires_at=None),
    _case("ParleySignalingFanoutLatencyHigh", _buckets(
        "parley_signaling_fanout_seconds", "",
        {"0.01": "0x30", "0.25": "0x30", "1": "0+10x30", "+Inf": "0+10x30"}), fires_at="16m"),
    _case("ParleySignalingFanoutLatencyHigh", _buckets(
        "parley_signaling_fanout_seconds", "",
        {"0.01": "0+10x30", "0.25": "0+10x30", "1": "0+10x30", "+Inf": "0+10x30"}),
        fires_at=None),
    _case("ParleyRelayFleetNearCapacity", {
        'parley_relay_allocations{instance="relay-a"}': "300x30",
        'parley_relay_allocations{instance="relay-b"}': "200x30"}, fires_at="11m"),
    _case("ParleyRelayFleetNearCapacity", {
        'parley_relay_allocations{instance="relay-a"}': "300x30",
        'parley_relay_allocations{instance="relay-b"}': "170x30"}, fires_at=None),
    _case("ParleyNoLiveRelay", {
        'parley_rooms_relays{state="usable"}': "1 1 0x30",
        'parley_rooms_relays{state="draining"}': "0 0 1x30"},
        quiet_at="1m", fires_at="5m", severity="critical"),
    _case("ParleyNoLiveRelay", {"parley_rooms_created_total": "0x30"},  # rooms not scraped
          quiet_at="1m", fires_at="5m", severity="critical"),
    _case("ParleyNoLiveRelay", {
        'parley_rooms_relays{state="usable"}': "1x30",
        'parley_rooms_relays{state="draining"}': "1x30"}, fires_at=None),
    _case("ParleyMetricsAggregationLagging", _buckets(
        "parley_metrics_aggregation_lag_seconds", "",
        {"60": "0x30", "300": "0x30", "900": "0+10x30", "+Inf": "0+10x30"}), fires_at="16m"),
    _case("ParleyMetricsAggregationLagging", {  # a backlog and no fold since t=60 s: stalled
        "parley_metrics_aggregation_pending": "50x30",
        "parley_metrics_last_fold_timestamp_seconds": "60x30"}, fires_at="17m"),
    _case("ParleyMetricsAggregationLagging", {  # folding every minute, lag under a minute
        "parley_metrics_aggregation_pending": "50x30",
        "parley_metrics_last_fold_timestamp_seconds": "0+60x30",
        **_buckets("parley_metrics_aggregation_lag_seconds", "",
                   {"60": "0+10x30", "300": "0+10x30", "+Inf": "0+10x30"})}, fires_at=None),
    _case("ParleyDiagnosticRecordPastRetention", {  # 30 days + 1 h interval = 2595600 s
        "parley_diaglog_oldest_record_age_seconds": "2595000+60x30",
        "parley_logpurge_retention_seconds": "2592000x30",
        "parley_logpurge_interval_seconds": "3600x30"},
        quiet_at="9m", fires_at="21m", severity="critical"),
    _case("ParleyDiagnosticRecordPastRetention", {
        "parley_diaglog_oldest_record_age_seconds": "2595000x30",
        "parley_logpurge_retention_seconds": "2592000x30",
        "parley_logpurge_interval_seconds": "3600x30"}, fires_at=None),
]


def test_promtool_test_rules_each_alert_firing_and_not(render: Any, tmp_path: Path) -> None:
    groups = _rule(render(MONITORING))["spec"]["groups"]
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}))
    tested = {c["alert_rule_test"][0]["alertname"] for c in CASES}
    assert tested == set(ALERTS)
    spec = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": CASES}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    proc = _promtool("test", "rules", "tests.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
