"""NATS wiring: per-room subscriptions, reference-counted, and publication.

A replica subscribes to a room (`parley.room.<room key>.>`: the room's broadcasts, its
peers' inboxes and rooms' slot changes) while it holds at least one socket of that room, and
hands each message to one of two callbacks: signalling's own (fanned out locally) or rooms'
membership events. Subjects come from `services.common.subjects`
and carry opaque keys only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry import trace

from services.common import subjects
from services.common.bus import Envelope, Handler
from services.common.telemetry import private_span, recording

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("parley.signaling")

OnMessage = Callable[[str, bytes], None]


class PubSub(Protocol):
    """The part of `services.common.bus.Bus` this module uses (NatsBus or LoopbackBus)."""

    async def publish(self, subject: str, data: bytes) -> None: ...

    async def subscribe(self, subject: str, handler: Handler) -> Any: ...


room_all = subjects.room_all


def room_key_of(subject: str) -> str:
    """The room key a room subject carries (`parley.room.<rk>.…`)."""
    return subject.split(".", 3)[2]


@dataclass
class _Entry:
    refs: int = 0
    ready: asyncio.Future[Any] | None = None
    sub: Any = None


class RoomBus:
    """Reference-counted room subscriptions over one bus connection."""

    def __init__(self, bus: PubSub, on_message: OnMessage,
                 on_membership: OnMessage | None = None) -> None:
        self.bus = bus
        self.on_message = on_message
        self.on_membership = on_membership
        self.entries: dict[str, _Entry] = {}

    async def _handle(self, env: Envelope) -> None:
        if not recording():  # an untraced message (the common case): no span
            self._dispatch(env)
            return
        with private_span(_tracer, "signaling deliver"):
            self._dispatch(env)

    def _dispatch(self, env: Envelope) -> None:
        rk = room_key_of(env.subject)
        if env.subject == subjects.room_members(rk):
            if self.on_membership is not None:
                self.on_membership(rk, env.data)
            return
        self.on_message(rk, env.data)

    async def acquire(self, rk: str) -> None:
        """Hold the room's subscription; returns once it is active."""
        entry = self.entries.get(rk)
        if entry is None:
            entry = self.entries[rk] = _Entry()
            entry.ready = asyncio.get_running_loop().create_future()
            entry.refs += 1
            try:
                entry.sub = await self.bus.subscribe(room_all(rk), self._handle)
            except BaseException as exc:
                entry.ready.set_exception(exc)
                entry.ready.exception()  # retrieved: no "never retrieved" warning
                if self.entries.get(rk) is entry:
                    del self.entries[rk]
                raise
            entry.ready.set_result(None)
            return
        entry.refs += 1
        assert entry.ready is not None
        try:
            await asyncio.shield(entry.ready)
        except BaseException:
            entry.refs -= 1
            raise

    async def release(self, rk: str) -> None:
        """Let go of the room; unsubscribe when nobody holds it."""
        entry = self.entries.get(rk)
        if entry is None:
            return
        entry.refs -= 1
        if entry.refs > 0:
            return
        del self.entries[rk]
        if entry.sub is not None:
            try:
                await entry.sub.unsubscribe()
            except Exception as exc:  # connection closing: nothing to release
                log.debug("unsubscribe failed: %s", type(exc).__name__)

    async def publish_room(self, rk: str, data: bytes) -> None:
        await self.bus.publish(subjects.room_events(rk), data)

    async def publish_peer(self, rk: str, peer: str, data: bytes) -> None:
        await self.bus.publish(subjects.peer_inbox(rk, peer), data)

    @property
    def rooms(self) -> int:
        return len(self.entries)
