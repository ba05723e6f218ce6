"""Every message that crosses NATS, as a pydantic model: the contracts between services."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RelayHeartbeat(_Message):
    """A relay announcing itself and its load, every few seconds, on `relay_heartbeat(id)`.

    Rooms keeps relays whose last heartbeat is younger than its relay TTL and hands out
    the least loaded one that is not draining.
    """

    relay_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    public_host: str = Field(max_length=253, description="address or DNS name clients use")
    udp_port: int | None = Field(default=3478, ge=1, le=65535)
    tcp_port: int | None = Field(default=3478, ge=1, le=65535)
    tls_port: int | None = Field(default=None, ge=1, le=65535)
    worker_ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(
        default_factory=list, max_length=64,
        description="one UDP+TCP port per worker process (`--worker-port-base`): rooms sends "
        "every member of a room to the same one, so their packets meet in one process",
    )
    realm: str = Field(default="parley", max_length=128)
    allocations: int = Field(default=0, ge=0)
    capacity: int | None = Field(default=None, ge=0, description="allocation quota, if any")
    bytes_per_second: float = Field(default=0.0, ge=0)
    draining: bool = False
    sent_at: float = Field(description="unix time the heartbeat was sent")


class RelayControl(_Message):
    """A request to one relay (from the operator): drain, or pick up rotated secrets."""

    action: Literal["drain", "undrain", "reload-secrets"]
    deadline_seconds: float | None = Field(default=None, ge=0)


class TurnTraceHint(_Message):
    """Rooms to a relay: the join whose trace (the message's traceparent header) a TURN
    credential's allocations continue. The credential is named by a digest of its username
    (`services.common.credentials.username_digest`), never by the username itself."""

    user: str = Field(pattern=r"^[0-9a-f]{32}$")


class DiagnosticRecord(_Message):
    """One diagnostic-log record: who (IP) joined what (room) when, from which service.

    Only written through `services.common.diaglog`; the IP and room are encrypted there.
    """

    ip: str = Field(max_length=45)
    room: str = Field(max_length=64)
    at: float
    service: str = Field(max_length=32)
    event: str = Field(default="join", max_length=32)


class AuditEvent(_Message):
    """What a purge or erasure did, in counts only."""

    kind: Literal["purge", "erase"]
    removed: int = Field(ge=0)
    at: float
    detail: dict[str, int] = Field(default_factory=dict)


class MembershipEvent(_Message):
    """A slot of a room taken or released through rooms, on `room_members(room key)`.

    `joined`: a peer took a slot and has not opened its socket yet (others see it pending);
    `left`: the peer left through `POST /api/rooms/{name}/leave` (its socket, wherever it
    is, is closed with 4410). Expiry needs no event: signalling checks membership on every
    heartbeat.
    """

    peer_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    event: Literal["joined", "left"]


class RoomLockEvent(_Message):
    """The room's owner locked or unlocked it through rooms, on `room_members(room key)`:
    signalling tells every member (`room-state`), so everyone sees the lock, not only the
    owner. No password, no owner key: only the new state.
    """

    event: Literal["lock"] = "lock"
    locked: bool


class SfuHeartbeat(_Message):
    """An SFU announcing itself and its load, every few seconds, on `sfu_heartbeat(id)`.

    Rooms pins each SFU room to the least loaded live SFU that is not draining. No address:
    browsers learn the SFU's address from its SDP answer.
    """

    sfu_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    rooms: int = Field(default=0, ge=0)
    peers: int = Field(default=0, ge=0)
    streams: int = Field(default=0, ge=0)
    packets_per_second: float = Field(default=0.0, ge=0)
    cpu: float = Field(default=0.0, ge=0, description="process CPU, in cores")
    capacity: int = Field(default=200, ge=0, description="PeerConnections it accepts")
    draining: bool = False
    sent_at: float = Field(description="unix time the heartbeat was sent")


class SfuSessionRequest(_Message):
    """Signalling to an SFU for one participant: an offer, its slot map, or both.

    `room_key` is the room's keyed hash; `sdp` has no `a=candidate` lines (docs/sfu.md).
    """

    room_key: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    peer_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    sdp: str | None = Field(default=None, max_length=120_000)
    subscribe: dict[str, int] | None = Field(default=None, max_length=64)
    leave: bool = False


class SfuSessionReply(_Message):
    """The SFU's answer to a `SfuSessionRequest`."""

    ok: bool
    sdp: str | None = Field(default=None, max_length=200_000)
    error: Literal["draining", "full", "bad-offer", "no-session"] | None = None


class SfuControl(_Message):
    """A request to one SFU (from the operator): drain or undrain."""

    action: Literal["drain", "undrain"]
    deadline_seconds: float | None = Field(default=None, ge=0)


class MediaPathEvent(_Message):
    """Rooms moved a room to the SFU, on `room_members(room key)`: signalling tells every
    member (`media-path`) so their pages switch without a reload."""

    event: Literal["path"] = "path"
    path: Literal["mesh", "sfu"]
