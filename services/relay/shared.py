"""Counters and control flags shared between the supervisor and its worker processes.

One `multiprocessing.RawArray` of doubles: a control block the supervisor writes (drain,
stop after drain, deadline, secrets generation) and one slot per worker that the worker
writes (ready, allocations, counters). Single-writer fields, so no locks are needed.
`LivePorts` is a byte per UDP port: which relayed ports have a live socket, written by the
worker that owns the port (workers' port slices are disjoint), read by all of them.
"""

from __future__ import annotations

import multiprocessing
from ctypes import c_double, c_uint8
from typing import Any, Final

CONTROL_FIELDS: Final[tuple[str, ...]] = ("draining", "stopping", "deadline", "secrets_generation")
ERROR_CODES: Final[tuple[int, ...]] = (400, 401, 403, 420, 437, 438, 440, 441, 442, 443, 486, 508)
WORKER_FIELDS: Final[tuple[str, ...]] = (
    "ready",
    "stopped",
    "pid",
    "allocations",
    "packets_relayed",
    "bytes_relayed",
    "allocations_created",
    "rate_limited",
    "malformed",
    "dropped",
    "local_delivered",
    "gso_sent",
    "tcp_connections",
    "draining",
    *(f"error_{c}" for c in ERROR_CODES),
)
_C: Final[dict[str, int]] = {n: i for i, n in enumerate(CONTROL_FIELDS)}
_W: Final[dict[str, int]] = {n: i for i, n in enumerate(WORKER_FIELDS)}


class LivePorts:
    """The relayed ports with a live socket, shared by every worker (a byte per port)."""

    def __init__(self, array: Any = None) -> None:
        self.array: Any = array if array is not None else multiprocessing.RawArray(c_uint8, 65536)

    def add(self, port: int) -> None:
        """Mark `port` live (by the worker that bound it)."""
        self.array[port] = 1

    def discard(self, port: int) -> None:
        """Mark `port` closed."""
        self.array[port] = 0

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and 0 <= port < 65536 and bool(self.array[port])


class SharedState:
    """Typed access to the shared array."""

    def __init__(self, workers: int, array: Any = None) -> None:
        self.workers = workers
        size = len(CONTROL_FIELDS) + workers * len(WORKER_FIELDS)
        self.array: Any = array if array is not None else multiprocessing.RawArray(c_double, size)
        self.live_ports = LivePorts()

    def get(self, name: str) -> float:
        """A control field."""
        return float(self.array[_C[name]])

    def set(self, name: str, value: float) -> None:
        """Write a control field (supervisor only)."""
        self.array[_C[name]] = value

    def _offset(self, worker: int, name: str) -> int:
        return len(CONTROL_FIELDS) + worker * len(WORKER_FIELDS) + _W[name]

    def worker_get(self, worker: int, name: str) -> float:
        """A field of worker `worker`'s slot."""
        return float(self.array[self._offset(worker, name)])

    def worker_set(self, worker: int, name: str, value: float) -> None:
        """Write a field of worker `worker`'s slot (that worker only)."""
        self.array[self._offset(worker, name)] = value

    def total(self, name: str) -> float:
        """Sum of a worker field over all workers."""
        return sum(self.worker_get(w, name) for w in range(self.workers))

    def all(self, name: str) -> bool:
        """Whether a worker flag is set in every worker."""
        return all(self.worker_get(w, name) for w in range(self.workers))
