"""Prometheus metrics of the SFU, read from the node at scrape time (no per-room labels)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .node import SfuNode

_COUNTERS = (
    ("rtp_in", "packets_received", "RTP packets received from publishers."),
    ("rtp_out", "packets_forwarded", "RTP packets forwarded to subscribers."),
    ("rtcp_in", "rtcp_received", "RTCP packets received."),
    ("dropped", "packets_dropped", "Datagrams dropped (malformed, unknown, unauthenticated)."),
    ("nack_hits", "nack_hits", "NACKed packets resent from the cache."),
    ("nack_misses", "nack_misses", "NACKed packets no longer in the cache."),
    ("plis_sent", "plis", "Key-frame requests sent to publishers."),
    ("plis_throttled", "plis_throttled", "Key-frame requests dropped by the throttle."),
)


class SfuCollector(Collector):
    """Gauges of the load and counters of the forwarding core."""

    def __init__(self, node: SfuNode) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        n = self.node
        load = n.load
        yield GaugeMetricFamily("parley_sfu_rooms", "Rooms on this SFU.", value=len(n.rooms))
        yield GaugeMetricFamily("parley_sfu_peers", "PeerConnections.", value=n.peer_count())
        yield GaugeMetricFamily("parley_sfu_streams", "Published and forwarded streams.",
                                value=load.streams)
        yield GaugeMetricFamily("parley_sfu_cpu_cores", "Process CPU over the last second.",
                                value=load.cpu)
        yield GaugeMetricFamily("parley_sfu_draining", "1 while draining.",
                                value=1 if n.draining else 0)
        for attr, name, doc in _COUNTERS:
            yield CounterMetricFamily(f"parley_sfu_{name}", doc, value=getattr(n.counters, attr))
        yield CounterMetricFamily("parley_sfu_srtp_failures", "SRTP/SRTCP that did not verify.",
                                  value=n.srtp_failures)


def make_registry(node: SfuNode) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(SfuCollector(node))
    return registry
