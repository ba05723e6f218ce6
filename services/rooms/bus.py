"""Rooms' NATS wiring: feed relay heartbeats into the registry; announce slot changes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

from pydantic import ValidationError

from services.common import subjects
from services.common.bus import Envelope, NatsBus
from services.common.credentials import username_digest
from services.common.messages import (
    MediaPathEvent,
    MembershipEvent,
    RelayHeartbeat,
    RoomLockEvent,
    SfuHeartbeat,
    TurnTraceHint,
)
from services.common.telemetry import recording
from services.rooms.relays import RelayRegistry
from services.rooms.sfus import SfuRegistry

log = logging.getLogger(__name__)
MAX_HEARTBEAT_BYTES = 4096


async def _follow(bus: NatsBus, subject: str, model: type[RelayHeartbeat] | type[SfuHeartbeat],
                  observe: Callable[..., None], what: str) -> object:
    """Subscribe to `subject`'s heartbeats into `observe`; malformed or oversized ones are
    dropped (a debug line for the malformed)."""

    async def on_heartbeat(env: Envelope) -> None:
        if len(env.data) > MAX_HEARTBEAT_BYTES:
            return
        try:
            hb = model.model_validate_json(env.data)
        except ValidationError:
            log.debug("dropped a malformed %s heartbeat", what)
            return
        observe(hb, now=time.time())

    return await bus.subscribe(subject, on_heartbeat)


async def follow_relays(bus: NatsBus, registry: RelayRegistry) -> object:
    """Subscribe to every relay's heartbeats; malformed ones are dropped with a debug line."""
    return await _follow(bus, subjects.RELAY_HEARTBEATS, RelayHeartbeat, registry.observe,
                         "relay")


async def announce_membership(bus: NatsBus, rk: str, peer_id: str,
                              event: Literal["joined", "left"]) -> None:
    """Tell signalling a slot was taken or released (opaque room key and peer id only).

    Best effort: a lost event delays the effect until signalling's next membership check
    (one heartbeat), never undoes it.
    """
    data = MembershipEvent(peer_id=peer_id, event=event).model_dump_json().encode()
    try:
        await bus.publish(subjects.room_members(rk), data)
    except Exception as exc:
        log.warning("membership event not published: %s", type(exc).__name__)


async def announce_lock(bus: NatsBus, rk: str, *, locked: bool) -> None:
    """Tell signalling the room was locked or unlocked, so every member sees it (best effort:
    a lost event leaves members with the state they joined with; the owner still sees it)."""
    data = RoomLockEvent(locked=locked).model_dump_json().encode()
    try:
        await bus.publish(subjects.room_members(rk), data)
    except Exception as exc:
        log.warning("lock event not published: %s", type(exc).__name__)


async def follow_sfus(bus: NatsBus, registry: SfuRegistry) -> object:
    """Subscribe to every SFU's heartbeats; malformed ones are dropped."""
    return await _follow(bus, subjects.SFU_HEARTBEATS, SfuHeartbeat, registry.observe, "SFU")


async def announce_media_path(bus: NatsBus, rk: str) -> None:
    """Tell signalling the room moved to the SFU, so every member's page switches (best
    effort: pages also switch on their own when they count more than the mesh limit)."""
    data = MediaPathEvent(path="sfu").model_dump_json().encode()
    try:
        await bus.publish(subjects.room_members(rk), data)
    except Exception as exc:
        log.warning("media-path event not published: %s", type(exc).__name__)
async def hint_relay_trace(bus: NatsBus, relay_id: str, username: str) -> None:
    """Tell the relay which trace the allocations of this credential continue (the join's,
    in the message's traceparent header); only while that trace is recorded. Best effort."""
    if not recording():
        return
    data = TurnTraceHint(user=username_digest(username)).model_dump_json().encode()
    try:
        await bus.publish(subjects.relay_trace(relay_id), data)
    except Exception as exc:
        log.debug("trace hint not published: %s", type(exc).__name__)
