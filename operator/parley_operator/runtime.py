"""What a running operator holds: its Kubernetes client, its NATS bus, the heartbeat cache,
probe records, the clock, and one lock per pool (timers and change handlers take turns)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from parley_operator.kube import Kube
from parley_operator.manifests import Tracing
from parley_operator.observe import HeartbeatCache, ProbeRecord
from parley_operator.pool import PoolRef
from parley_operator.probe import ProbeFn, subprocess_probe
from services.common.bus import NatsBus

__all__ = ["Runtime", "utcnow"]


def utcnow() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


@dataclass(slots=True)
class Runtime:
    """Per-process state shared by every handler (kept in kopf's memo)."""

    kube: Kube
    bus: NatsBus
    relay_nats_url: str
    cache: HeartbeatCache
    sfu_nats_url: str | None = None  # what SFU pods connect to (the sfu user)
    tracing: Tracing | None = None  # trace settings copied to the pods
    probe: ProbeFn = subprocess_probe
    clock: Callable[[], datetime] = utcnow
    monotonic: Callable[[], float] = time.monotonic
    subscription: Any = None
    _probes: dict[tuple[str, str], dict[str, ProbeRecord]] = field(default_factory=dict)
    _locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)

    def lock(self, pool: PoolRef) -> asyncio.Lock:
        """The lock that serialises rounds on one pool."""
        return self._locks.setdefault((pool.namespace, pool.name), asyncio.Lock())

    def probes(self, pool: PoolRef) -> dict[str, ProbeRecord]:
        """The pool's probe records by relay id (mutable)."""
        return self._probes.setdefault((pool.namespace, pool.name), {})

    async def close(self) -> None:
        """Unsubscribe, close NATS, close the Kubernetes client."""
        subs = self.subscription if isinstance(self.subscription, list) else [self.subscription]
        for sub in subs:
            if sub is not None:
                with contextlib.suppress(Exception):  # closing anyway
                    await sub.unsubscribe()
        await self.bus.close()
        await self.kube.close()
