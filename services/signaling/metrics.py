"""Prometheus metrics of the signalling service (one set per process, in the default registry).

Labels carry message types and close codes only: never a room, a peer or an address.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS: Final[Gauge] = Gauge(
    "parley_signaling_connections", "Open websockets on this replica.")
PEERS: Final[Gauge] = Gauge(
    "parley_signaling_peers", "Joined peers on this replica.")
ROOMS: Final[Gauge] = Gauge(
    "parley_signaling_rooms", "Rooms with at least one socket on this replica.")
ROOMS_IN_PROGRESS: Final[Gauge] = Gauge(
    "parley_signaling_rooms_in_progress",
    "This replica's share of the rooms in progress (sum over replicas: the rooms).")
CALLS_IN_PROGRESS: Final[Gauge] = Gauge(
    "parley_signaling_calls_in_progress",
    "This replica's share of the rooms with two or more members (sum over replicas: the calls).")
ACCEPTED: Final[Counter] = Counter(
    "parley_signaling_sockets_accepted_total", "Websockets accepted (the signalling SLO's total).")
MESSAGES_IN: Final[Counter] = Counter(
    "parley_signaling_messages_received_total", "Client messages received, by type.", ["type"])
MESSAGES_OUT: Final[Counter] = Counter(
    "parley_signaling_messages_delivered_total",
    "Frames written to local sockets from the bus, by type.", ["type"])
ERRORS: Final[Counter] = Counter(
    "parley_signaling_errors_total", "Error messages sent to clients, by code.", ["code"])
CLOSES: Final[Counter] = Counter(
    "parley_signaling_closes_total", "Sockets closed by the server, by close code.", ["code"])
for _code in ("1011", "1013"):  # the SLO's errors, exported at 0 before the first one
    CLOSES.labels(_code)
SLOW_CONSUMERS: Final[Counter] = Counter(
    "parley_signaling_slow_consumers_total", "Sockets dropped because their outbox was full.")
RESUMES: Final[Counter] = Counter(
    "parley_signaling_resumes_total", "Resume attempts, by outcome.", ["outcome"])
REAPED: Final[Counter] = Counter(
    "parley_signaling_reaped_total", "Peers removed after their grace period.")
FANOUT: Final[Histogram] = Histogram(
    "parley_signaling_fanout_seconds",
    "From publication on one replica to the frame's write to local sockets (any replica).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
LOOP_LAG: Final[Histogram] = Histogram(
    "parley_signaling_loop_lag_seconds",
    "How late the once-a-second timer wakes up: event-loop saturation (or CPU starvation).",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
GC_PAUSE: Final[Histogram] = Histogram(
    "parley_signaling_gc_pause_seconds", "Garbage-collector pauses, by generation.",
    ["generation"], buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))


def watch_gc() -> None:
    """Record every collection's pause in GC_PAUSE (idempotent)."""
    import gc
    import time

    if any(getattr(cb, "_parley", False) for cb in gc.callbacks):
        return
    started: list[float] = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            GC_PAUSE.labels(str(info["generation"])).observe(time.perf_counter() - started[0])

    callback._parley = True  # type: ignore[attr-defined]
    gc.callbacks.append(callback)
