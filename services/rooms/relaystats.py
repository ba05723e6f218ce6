"""Rooms' view of the relay fleet as Prometheus gauges, read from the registry at scrape time.

`parley_rooms_relays{state="usable"}` is what a join can be given: at zero, calls between
networks that block direct connections fail (the "no live relay" alert). No relay id or
address is exported; per-relay figures come from each relay's own /metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.rooms.relays import RelayRegistry


class RelayRegistryCollector(Collector):
    """Counts of the live relays rooms knows of, by state."""

    def __init__(self, registry: RelayRegistry, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry, self.clock = registry, clock

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "parley_rooms_relays", "Live relays this rooms replica hears, by state.",
            labels=["state"])
        for state, count in self.registry.counts(now=self.clock()).items():
            family.add_metric([state], count)
        yield family
