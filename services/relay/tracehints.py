"""Which join's trace a TURN allocation continues: hints from rooms, kept briefly per worker.

Rooms mints a credential for a join and, while that join's trace is recorded, sends the
chosen relay a `TurnTraceHint` (a digest of the credential's username, the join's W3C
traceparent in the NATS headers). A worker that then allocates for that username makes its
`turn allocate` span a child of the hint: the allocation lands in the join's trace. Nothing
about the client (no address) enters the hint or the span.

`TraceHints` is the sans-I/O store (bounded, entries expire); `follow_hints` is the thin
NATS shell a worker runs only when it exports traces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Any, Final

from pydantic import ValidationError

from services.common.access import inbox_prefix_for
from services.common.credentials import username_digest
from services.common.messages import TurnTraceHint
from services.common.subjects import relay_trace
from services.common.telemetry import TRACEPARENT

log = logging.getLogger("parley.relay.tracehints")

MAX_HINTS: Final[int] = 10_000
HINT_TTL: Final[float] = 120.0  # a browser allocates within seconds of its join answer
MAX_HINT_BYTES: Final[int] = 256


class TraceHints:
    """Credential digest -> traceparent, at most `max_hints`, each for `ttl` seconds."""

    def __init__(self, *, max_hints: int = MAX_HINTS, ttl: float = HINT_TTL) -> None:
        self.max_hints, self.ttl = max_hints, ttl
        self._hints: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hints)

    def add(self, data: bytes, headers: dict[str, str] | None, *, now: float) -> bool:
        """Take one hint message (payload + NATS headers); False when it is not one."""
        parent = (headers or {}).get("traceparent", "")
        if len(data) > MAX_HINT_BYTES or not TRACEPARENT.match(parent):
            return False
        try:
            hint = TurnTraceHint.model_validate_json(data)
        except ValidationError:
            return False
        self._hints.pop(hint.user, None)
        self._hints[hint.user] = (parent, now + self.ttl)
        while len(self._hints) > self.max_hints:
            self._hints.popitem(last=False)
        return True

    def traceparent_for(self, username: str, *, now: float) -> str | None:
        """The traceparent hinted for `username`'s credential, if one is fresh."""
        self.prune(now)
        found = self._hints.get(username_digest(username))
        return found[0] if found else None

    def prune(self, now: float) -> None:
        """Forget expired hints (oldest first: they were added in time order)."""
        while self._hints:
            key, (_, expires) = next(iter(self._hints.items()))
            if expires > now:
                return
            del self._hints[key]


async def follow_hints(nats_url: str, relay_id: str, hints: TraceHints) -> None:
    """Keep a NATS subscription to this relay's trace hints until cancelled (retries quietly)."""
    import nats

    async def quiet(*_: Any) -> None:
        return None

    async def on_hint(msg: Any) -> None:
        hints.add(msg.data, dict(msg.headers or {}), now=time.monotonic())

    delay = 0.5
    while True:
        try:
            nc = await nats.connect(
                nats_url, name=f"relay-{relay_id}-hints", connect_timeout=2,
                max_reconnect_attempts=-1, reconnect_time_wait=1, error_cb=quiet,
                disconnected_cb=quiet, reconnected_cb=quiet,
                inbox_prefix=inbox_prefix_for(nats_url))
        except Exception:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
            continue
        try:
            await nc.subscribe(relay_trace(relay_id), cb=on_hint)
            await asyncio.Event().wait()  # until cancelled
        finally:
            with contextlib.suppress(Exception):
                await nc.close()
