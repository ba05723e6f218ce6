"""The dashboards and alerts against a live Prometheus scraping `parley dev` under a short
load: every query of every panel runs and returns series, no dashboard names a metric no
service exports, and the chart's rules load and evaluate without error."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.chart.conftest import CHART, PROMETHEUS_API, _helm_path, _render
from tests.prometheus import prometheus_binary
from tests.stack import Stack, start_stack
from tools.dashboards import promql
from tools.dashboards.load import short_load
from tools.dashboards.prom import Prometheus, PrometheusError

#: Grafana's $__rate_interval for a 1 s scrape: wide enough for the whole short load.
RATE_INTERVAL = "20s"
DEADLINE = 40.0


@dataclass
class Live:
    stack: Stack
    prometheus: Prometheus
    metrics_urls: dict[str, str]


def scrape_jobs(stack: Stack) -> dict[str, str]:
    """job name (rooms, signaling, relay, sfu, logpurge, metrics) -> the service's /metrics
    URL."""
    jobs = {}
    for key, url in stack.run_env().items():
        if key.endswith("_INTERNAL_URL") and url.startswith("http://"):
            name = key.removeprefix("PARLEY_").removesuffix("_INTERNAL_URL").lower()
            jobs[name.replace("_", "-")] = f"{url}/metrics"
    return jobs


def rules_file(tmp: Path) -> Path | None:
    """The chart's PrometheusRule (ci/monitoring-values.yaml) as a Prometheus rule file."""
    helm = _helm_path()
    if helm.startswith("!"):
        return None
    manifests = _render(helm, str(CHART / "ci" / "monitoring-values.yaml"),
                        ("--api-versions", PROMETHEUS_API))
    (rule,) = [m for m in manifests if m["kind"] == "PrometheusRule"]
    path = tmp / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    binary = prometheus_binary()
    stack = start_stack(data_dir=tmp_path_factory.mktemp("monitoring") / "state", sfus=1)
    try:
        urls = scrape_jobs(stack)
        assert {"rooms", "signaling-1", "relay", "sfu-1", "logpurge", "metrics"} <= set(urls), urls
        jobs = {job: [url.removeprefix("http://").removesuffix("/metrics")]
                for job, url in urls.items()}
        rules = rules_file(tmp_path_factory.mktemp("rules"))
        with Prometheus(jobs, binary=binary, rule_files=[rules] if rules else []) as prom:
            asyncio.run(short_load(stack.port))
            yield Live(stack, prom, urls)
    finally:
        assert stack.stop() == 0


def _variables(live: Live, board: dict[str, object]) -> dict[str, str]:
    values = {"__rate_interval": RATE_INTERVAL, **promql.constants(board)}  # type: ignore[arg-type]
    relays = live.prometheus.label_values("instance", "parley_relay_allocations")
    values["relay"] = relays[0] if relays else "no-relay-scraped"
    sfus = live.prometheus.label_values("instance", "parley_sfu_peers")
    values["sfu"] = sfus[0] if sfus else "no-sfu-scraped"
    return values


def test_dashboards_every_query_returns_series(live: Live) -> None:
    boards = promql.load()
    assert len(boards) >= 5
    pending: dict[str, str] = {}
    deadline = time.monotonic() + DEADLINE
    while True:
        pending = {}
        for board in boards.values():
            values = _variables(live, board)
            for t in promql.targets(board):
                expr = promql.expand(t.expr, values)
                try:
                    if not live.prometheus.query(expr):
                        pending[f"{t.dashboard} / {t.panel}: {expr}"] = "no series"
                except PrometheusError as exc:
                    pending[f"{t.dashboard} / {t.panel}: {expr}"] = str(exc)
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert not pending, "\n".join(f"{k}\n    -> {v}" for k, v in pending.items())


def _exported(url: str) -> set[str]:
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def test_dashboards_name_only_exported_metrics(live: Live) -> None:
    exported = set().union(*(_exported(url) for url in live.metrics_urls.values()))
    unknown = {f"{t.dashboard} / {t.panel}: {name}"
               for board in promql.load().values() for t in promql.targets(board)
               for name in promql.metric_names(t.expr) if name not in exported}
    assert not unknown, "\n".join(sorted(unknown))


def test_rules_load_and_evaluate_against_the_live_stack(live: Live) -> None:
    if _helm_path().startswith("!"):
        pytest.skip("helm is not on PATH and tools/helm.sh could not fetch it")
    deadline = time.monotonic() + DEADLINE
    while True:
        groups = live.prometheus.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        evaluated = rules and all(r["health"] != "unknown" for r in rules)
        if evaluated or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert rules, "no rule loaded"
    bad = [f"{r['name']}: {r['health']} {r.get('lastError', '')}" for r in rules
           if r["health"] != "ok"]
    assert not bad, "\n".join(bad)
    firing = [r["name"] for r in rules if r.get("state") == "firing"]
    assert not firing, f"a healthy stack fires {firing}"
