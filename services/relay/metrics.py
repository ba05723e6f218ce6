"""Prometheus metrics of the relay, read from the workers' shared counters at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .shared import ERROR_CODES, SharedState

_COUNTERS = (
    ("packets_relayed", "Packets relayed between clients and peers."),
    ("bytes_relayed", "Payload bytes relayed between clients and peers."),
    ("allocations_created", "Allocations created."),
    ("rate_limited", "STUN requests dropped by the per-source rate limit."),
    ("malformed", "Datagrams or frames that were not valid STUN/ChannelData."),
    ("dropped", "Packets dropped (no allocation, permission, channel or bandwidth)."),
    ("local_delivered", "Packets handed between two allocations of one worker in process."),
    ("gso_sent", "UDP GSO super-datagrams sent to clients (several packets in one send)."),
)


class RelayCollector(Collector):
    """Exposes the sums over all workers."""

    def __init__(self, shared: SharedState) -> None:
        self.shared = shared

    def collect(self) -> Iterator[Metric]:
        s = self.shared
        yield GaugeMetricFamily(
            "parley_relay_allocations", "Live allocations.", value=s.total("allocations")
        )
        yield GaugeMetricFamily(
            "parley_relay_stream_connections", "Open TCP/TLS client connections.",
            value=s.total("tcp_connections"),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "parley_relay_draining", "1 while draining.", value=s.get("draining")
        )
        yield GaugeMetricFamily(
            "parley_relay_workers_ready",
            "Workers serving.",
            value=s.total("ready") - s.total("stopped"),
        )
        for name, doc in _COUNTERS:
            yield CounterMetricFamily(f"parley_relay_{name}", doc, value=s.total(name))
        errors = CounterMetricFamily(
            "parley_relay_error_responses", "STUN error responses sent, by code.", labels=["code"]
        )
        for code in ERROR_CODES:
            errors.add_metric([str(code)], s.total(f"error_{code}"))
        yield errors


def make_registry(shared: SharedState) -> CollectorRegistry:
    """A registry holding only the relay's collector."""
    registry = CollectorRegistry()
    registry.register(RelayCollector(shared))
    return registry
