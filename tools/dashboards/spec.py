"""The dashboards as data: panels and their PromQL, written out as Grafana JSON into the chart.

`python -m tools.dashboards.spec` (re)writes charts/parley/dashboards/*.json; a chart test
checks the files match. Queries name only metrics some service exports (a test compares
them with live /metrics). Template variables: `$datasource` (a Prometheus data source),
`$__rate_interval` (Grafana's), `$relay` / `$sfu` (relay / SFU instances) and the
constants `$target` (RelayPool targetAllocationsPerRelay) and `$max_relays`, which the
chart sets from its values.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[2]
OUT: Final = ROOT / "charts" / "parley" / "dashboards"
DATASOURCE: Final[dict[str, str]] = {"type": "prometheus", "uid": "${datasource}"}
RI: Final = "$__rate_interval"
JOIN: Final = 'service="rooms",route="/api/rooms/{name}/join"'


@dataclass(frozen=True)
class Query:
    """One PromQL target of a panel and its legend."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """A time-series panel (or, without queries, a text note)."""

    title: str
    queries: tuple[Query, ...] = ()
    unit: str = "short"
    description: str = ""
    text: str = ""


@dataclass(frozen=True)
class Dashboard:
    """One dashboard: its uid (also the file name), title and panels, two per row."""

    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[dict[str, Any], ...] = field(default_factory=tuple)


def q(expr: str, legend: str = "") -> Query:
    return Query(expr, legend)


def p99(metric: str, selector: str = "", quantile: str = "0.99") -> str:
    """The quantile of a histogram over every replica."""
    sel = f"{{{selector}}}" if selector else ""
    return f"histogram_quantile({quantile}, sum by (le) (rate({metric}_bucket{sel}[{RI}])))"


RELAY_VAR: Final[dict[str, Any]] = {
    "name": "relay", "label": "Relay", "type": "query", "datasource": DATASOURCE,
    "definition": "label_values(parley_relay_allocations, instance)",
    "query": {"query": "label_values(parley_relay_allocations, instance)", "refId": "relay"},
    "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2, "sort": 1,
    "current": {}, "hide": 0, "regex": "", "options": [],
}


def constant(name: str, value: str, label: str) -> dict[str, Any]:
    """A hidden constant the chart overwrites from its values."""
    return {"name": name, "label": label, "type": "constant", "query": value, "hide": 2,
            "current": {"text": value, "value": value}, "options": []}


CALLS = Dashboard(
    "parley-calls", "Parley / Calls and joins",
    "Rooms and calls in progress, joins by result, join errors and latency.",
    (
        Panel("Rooms and calls in progress", (
            q("sum(parley_signaling_rooms_in_progress)", "rooms"),
            q("sum(parley_signaling_calls_in_progress)", "calls (2+ members)"),
            q("sum(parley_signaling_peers)", "peers connected"),
        ), description="Each signalling replica exports its share of every room (its peers "
                        "over the room's members); the sums are whole rooms."),
        Panel("Joins per second by result", (
            q(f"sum by (result) (rate(parley_rooms_joins_total[{RI}]))", "{{result}}"),
        ), unit="reqps", description="ok, full, locked, rate-limited: the answer a user got; "
                                     "error: a failure on our side (Redis, NATS)."),
        Panel("Join error ratio (our side)", (
            q(f'sum(rate(parley_rooms_joins_total{{result="error"}}[{RI}])) / '
              f"sum(rate(parley_rooms_joins_total[{RI}]))", "errors / joins"),
        ), unit="percentunit", description="The join SLO's error ratio "
                                          "(alert ParleyJoinErrorRatioHigh)."),
        Panel("Join latency", (
            q(p99("parley_http_request_duration_seconds", JOIN, "0.5"), "p50"),
            q(p99("parley_http_request_duration_seconds", JOIN), "p99"),
        ), unit="s", description="POST /api/rooms/{name}/join at rooms (alert "
                                 "ParleyJoinLatencyHigh on p99)."),
        Panel("Rooms created per second", (
            q(f"sum(rate(parley_rooms_created_total[{RI}]))", "created"),
        ), unit="reqps"),
        Panel("Relays rooms can hand out", (
            q("max by (state) (parley_rooms_relays)", "{{state}}"),
        ), description="usable: live and not draining (alert ParleyNoLiveRelay at 0)."),
    ),
)

RELAYS = Dashboard(
    "parley-relays", "Parley / Relay fleet",
    "The TURN relay fleet: allocations, packets and bytes relayed, draining relays, per relay. "
    "The SFU fleet has its own dashboard (Parley / SFU fleet).",
    (
        Panel("Fleet capacity used", (
            q("sum(parley_relay_allocations) / ($max_relays * $target)",
              "allocations / (max relays × target)"),
        ), unit="percentunit", description="Against the most the RelayPool may hold "
                                          "(alert ParleyRelayFleetNearCapacity at 80 %)."),
        Panel("Allocations per relay", (
            q('sum by (instance) (parley_relay_allocations{instance=~"$relay"})',
              "{{instance}}"),
        )),
        Panel("Packets relayed per second", (
            q(f'sum by (instance) (rate(parley_relay_packets_relayed_total{{instance=~"$relay"}}'
              f"[{RI}]))", "{{instance}}"),
        ), unit="pps"),
        Panel("Bytes relayed per second", (
            q(f'sum by (instance) (rate(parley_relay_bytes_relayed_total{{instance=~"$relay"}}'
              f"[{RI}]))", "{{instance}}"),
        ), unit="Bps"),
        Panel("Draining relays", (
            q('max by (instance) (parley_relay_draining{instance=~"$relay"})', "{{instance}}"),
            q("max by (state) (parley_rooms_relays)", "rooms sees: {{state}}"),
        ), description="1 while a relay drains: it keeps its allocations, gets no new room."),
        Panel("TCP/TLS connections and drops", (
            q('sum by (instance) (parley_relay_stream_connections{instance=~"$relay"})',
              "connections {{instance}}"),
            q(f'sum by (instance) (rate(parley_relay_dropped_total{{instance=~"$relay"}}[{RI}]))',
              "drops/s {{instance}}"),
        )),
        Panel("STUN error responses per second", (
            q(f'sum by (code) (rate(parley_relay_error_responses_total{{instance=~"$relay"}}'
              f"[{RI}]))", "{{code}}"),
        ), unit="reqps", description="401 is the normal first answer of every allocation."),
    ),
    (RELAY_VAR, constant("target", "200", "Target allocations per relay"),
     constant("max_relays", "10", "Most relays")),
)

SIGNALING = Dashboard(
    "parley-signaling", "Parley / Signalling",
    "Websockets per replica, server-side closes, fan-out latency across replicas, messages.",
    (
        Panel("Open websockets per replica", (
            q("sum by (instance) (parley_signaling_connections)", "{{instance}}"),
        )),
        Panel("Sockets accepted and closed per second", (
            q(f"sum(rate(parley_signaling_sockets_accepted_total[{RI}]))", "accepted"),
            q(f"sum by (code) (rate(parley_signaling_closes_total[{RI}]))", "closed {{code}}"),
        ), unit="reqps", description="1011: internal error (the signalling SLO's errors); "
                                     "1013: a client too slow for its messages."),
        Panel("Signalling error ratio", (
            q(f'sum(rate(parley_signaling_closes_total{{code="1011"}}[{RI}])) / '
              f"sum(rate(parley_signaling_sockets_accepted_total[{RI}]))", "1011 / accepted"),
        ), unit="percentunit", description="Alert ParleySignalingErrorRatioHigh."),
        Panel("Fan-out latency", (
            q(p99("parley_signaling_fanout_seconds", quantile="0.5"), "p50"),
            q(p99("parley_signaling_fanout_seconds"), "p99"),
        ), unit="s", description="From publication on one replica to the write to local "
                                 "sockets (alert ParleySignalingFanoutLatencyHigh on p99)."),
        Panel("Messages per second", (
            q(f"sum by (type) (rate(parley_signaling_messages_received_total[{RI}]))",
              "in {{type}}"),
            q(f"sum by (type) (rate(parley_signaling_messages_delivered_total[{RI}]))",
              "out {{type}}"),
        ), unit="reqps"),
        Panel("Event-loop lag p99 per replica", (
            q(f"histogram_quantile(0.99, sum by (instance, le) "
              f"(rate(parley_signaling_loop_lag_seconds_bucket[{RI}])))", "{{instance}}"),
        ), unit="s"),
    ),
)

METRICS = Dashboard(
    "parley-metrics-ingest", "Parley / Metrics ingest",
    "Anonymous beacons in, their aggregation into day counts, and its lag.",
    (
        Panel("Beacons per second by outcome", (
            q(f"sum by (outcome) (rate(parley_metrics_beacons_total[{RI}]))", "{{outcome}}"),
        ), unit="reqps"),
        Panel("Folded per second", (
            q(f"sum(rate(parley_metrics_folded_total[{RI}]))", "folded"),
            q(f"sum(rate(parley_metrics_redelivered_total[{RI}]))", "redelivered"),
            q(f"sum(rate(parley_metrics_malformed_total[{RI}]))", "malformed"),
        ), unit="reqps"),
        Panel("Aggregation lag", (
            q(p99("parley_metrics_aggregation_lag_seconds", quantile="0.5"), "p50"),
            q(p99("parley_metrics_aggregation_lag_seconds"), "p99"),
        ), unit="s", description="From JetStream storing a beacon to its fold "
                                 "(alert ParleyMetricsAggregationLagging)."),
        Panel("Backlog and time since the last fold", (
            q("max(parley_metrics_aggregation_pending)", "beacons not yet folded"),
            q("time() - max(parley_metrics_last_fold_timestamp_seconds)",
              "seconds since the last fold"),
        ), description="A backlog with no fold for long is a stalled aggregator."),
    ),
)

LOGPURGE = Dashboard(
    "parley-logpurge", "Parley / Diagnostic log and logpurge",
    "The privacy promise: no diagnostic record (IP, room, time) outlives the retention.",
    (
        Panel("Oldest diagnostic record against retention", (
            q("max(parley_diaglog_oldest_record_age_seconds)", "oldest record"),
            q("max(parley_logpurge_retention_seconds)", "retention"),
            q("max(parley_logpurge_retention_seconds + parley_logpurge_interval_seconds)",
              "retention + one purge interval (alert)"),
        ), unit="s", description="The oldest record must stay under retention plus one "
                                 "purge interval (alert ParleyDiagnosticRecordPastRetention)."),
        Panel("Records in the diagnostic log", (
            q("max(parley_diaglog_records)", "records"),
        )),
        Panel("Time since the last purge", (
            q("time() - max(parley_logpurge_last_purge_timestamp_seconds)", "seconds"),
            q("max(parley_logpurge_interval_seconds)", "purge interval"),
        ), unit="s"),
        Panel("Records removed and day keys destroyed", (
            q(f"sum by (reason) (increase(parley_logpurge_removed_total[{RI}]))",
              "removed: {{reason}}"),
            q(f"sum(increase(parley_logpurge_day_keys_destroyed_total[{RI}]))",
              "day keys destroyed"),
        )),
    ),
)

SFU_VAR: Final[dict[str, Any]] = {
    **RELAY_VAR, "name": "sfu", "label": "SFU",
    "definition": "label_values(parley_sfu_peers, instance)",
    "query": {"query": "label_values(parley_sfu_peers, instance)", "refId": "sfu"},
}

SFUS = Dashboard(
    "parley-sfus", "Parley / SFU fleet",
    "The SFUs (rooms past the mesh limit): PeerConnections, rooms and streams, forwarded "
    "packets, CPU, key-frame requests and NACKs, draining SFUs, per SFU.",
    (
        Panel("PeerConnections per SFU", (
            q('sum by (instance) (parley_sfu_peers{instance=~"$sfu"})', "{{instance}}"),
        ), description="The SfuPool scales on these against targetPeersPerSfu."),
        Panel("Rooms and streams per SFU", (
            q('sum by (instance) (parley_sfu_rooms{instance=~"$sfu"})', "rooms {{instance}}"),
            q('sum by (instance) (parley_sfu_streams{instance=~"$sfu"})',
              "streams {{instance}}"),
        )),
        Panel("Packets forwarded per second", (
            q(f'sum by (instance) (rate(parley_sfu_packets_forwarded_total{{instance=~"$sfu"}}'
              f"[{RI}]))", "out {{instance}}"),
            q(f'sum by (instance) (rate(parley_sfu_packets_received_total{{instance=~"$sfu"}}'
              f"[{RI}]))", "in {{instance}}"),
        ), unit="pps"),
        Panel("CPU per SFU", (
            q('max by (instance) (parley_sfu_cpu_cores{instance=~"$sfu"})', "{{instance}}"),
        ), unit="short", description="Cores used by the process (one asyncio thread: 1.0 is "
                                     "its ceiling)."),
        Panel("CPU per forwarded packet", (
            q(f'sum by (instance) (parley_sfu_cpu_cores{{instance=~"$sfu"}}) / sum by '
              f'(instance) (rate(parley_sfu_packets_forwarded_total{{instance=~"$sfu"}}[{RI}]))',
              "{{instance}}"),
        ), unit="s", description="bench/sfu measured about 15 µs on two cores."),
        Panel("Key frames, NACKs and drops per second", (
            q(f'sum(rate(parley_sfu_plis_total{{instance=~"$sfu"}}[{RI}]))', "PLIs sent"),
            q(f'sum(rate(parley_sfu_plis_throttled_total{{instance=~"$sfu"}}[{RI}]))',
              "PLIs throttled"),
            q(f'sum(rate(parley_sfu_nack_hits_total{{instance=~"$sfu"}}[{RI}]))', "NACK hits"),
            q(f'sum(rate(parley_sfu_nack_misses_total{{instance=~"$sfu"}}[{RI}]))',
              "NACK misses"),
            q(f'sum(rate(parley_sfu_packets_dropped_total{{instance=~"$sfu"}}[{RI}]))',
              "dropped"),
            q(f'sum(rate(parley_sfu_srtp_failures_total{{instance=~"$sfu"}}[{RI}]))',
              "SRTP failures"),
        ), unit="pps", description="Many NACK misses: subscribers behind by more than the "
                                   "512-packet cache; dropped: malformed or unknown datagrams."),
        Panel("Draining SFUs", (
            q('max by (instance) (parley_sfu_draining{instance=~"$sfu"})', "{{instance}}"),
        ), description="1 while an SFU drains: its rooms go on, it gets no new room."),
    ),
    (SFU_VAR,),
)

DASHBOARDS: Final[tuple[Dashboard, ...]] = (CALLS, RELAYS, SFUS, SIGNALING, METRICS, LOGPURGE)


def _panel_json(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    grid = {"h": 8, "w": 12, "x": x, "y": y}
    if not panel.queries:
        return {"id": pid, "type": "text", "title": panel.title, "gridPos": grid,
                "options": {"mode": "markdown", "content": panel.text}}
    refs = "ABCDEFGH"
    return {
        "id": pid, "type": "timeseries", "title": panel.title,
        "description": panel.description, "datasource": DATASOURCE, "gridPos": grid,
        "fieldConfig": {"defaults": {"unit": panel.unit, "min": 0}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom",
                               "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
        "targets": [{"datasource": DATASOURCE, "expr": t.expr, "legendFormat": t.legend,
                     "refId": refs[i], "range": True}
                    for i, t in enumerate(panel.queries)],
    }


def to_json(d: Dashboard) -> dict[str, Any]:
    """The Grafana dashboard model (schemaVersion 39, Grafana 10 and later)."""
    datasource_var = {"name": "datasource", "label": "Data source", "type": "datasource",
                      "query": "prometheus", "current": {}, "hide": 0, "regex": "",
                      "refresh": 1, "options": []}
    return {
        "uid": d.uid, "title": d.title, "description": d.description,
        "tags": ["parley"], "timezone": "utc", "editable": True, "graphTooltip": 1,
        "schemaVersion": 39, "version": 1, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"}, "timepicker": {},
        "annotations": {"list": []},
        "links": [{"title": "Parley", "type": "dashboards", "tags": ["parley"],
                   "asDropdown": True, "includeVars": False, "keepTime": True}],
        "templating": {"list": [datasource_var, *d.variables]},
        "panels": [_panel_json(panel, i + 1, 12 * (i % 2), 8 * (i // 2))
                   for i, panel in enumerate(d.panels)],
    }


def render_all() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {f"{d.uid}.json": json.dumps(to_json(d), indent=2, ensure_ascii=False) + "\n"
            for d in DASHBOARDS}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (OUT / name).write_text(text)
        print(OUT / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
