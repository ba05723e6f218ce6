"""Routing: the bus envelope between replicas and the local fan-out to sockets.

A bus message is one `BusHeader` JSON line, a newline, then the client frame exactly as
every recipient receives it: the sending replica encodes a frame once, each receiving
replica decodes the header once and writes the same frame to each of its local sockets
without awaiting any of them (each socket has a bounded outbox; see `Sink`).

`Hub` is the table of rooms this replica holds sockets for: per room, the local sinks by
peer id, the view of every peer in the room (on any replica) with its media state, and the
peers that hold a slot but have no socket yet (pending).
Everything here is synchronous and clock-free.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from services.signaling.errors import PresenceError
from services.signaling.protocol import MediaState

SEPARATOR: Final[bytes] = b"\n"


class BusHeader(BaseModel):
    """What a replica needs to route a frame; crosses NATS between signalling replicas."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    v: Literal[1] = 1
    kind: Literal["room", "peer", "kick"]
    src: str  # the peer the frame comes from (a room frame skips it)
    to: str | None = None  # peer / kick: the addressee
    conn: str | None = None  # kick: the connection that now holds `to`; others are closed
    event: Literal["joined", "left", "media"] | None = None  # how the frame changes the view
    media: MediaState | None = None
    type: str = ""  # the frame's message type (for metrics)
    sent: float = 0.0  # unix time of publication (fan-out latency)


def pack(header: BusHeader, frame: str) -> bytes:
    """The bus payload for `frame`."""
    return header.model_dump_json(exclude_defaults=False).encode() + SEPARATOR + frame.encode()


def unpack(data: bytes) -> tuple[BusHeader, str]:
    """Split a bus payload into header and frame.

    Raises:
        PresenceError: not a payload a signalling replica wrote.
    """
    head, sep, frame = data.partition(SEPARATOR)
    if not sep:
        raise PresenceError("bus payload lacks its header line")
    try:
        header = BusHeader.model_validate_json(head)
    except ValidationError as exc:
        raise PresenceError("bad bus header") from exc
    return header, frame.decode()


class Sink(Protocol):
    """A local socket, as the hub sees it."""

    conn_id: str

    def offer(self, frame: str) -> bool:
        """Queue `frame` without waiting; False if the socket cannot take it."""
        ...

    def kick(self, code: int, reason: str) -> None:
        """Close this socket (it has been replaced)."""
        ...


@dataclass
class LocalRoom:
    """One room as this replica sees it."""

    sinks: dict[str, Sink] = field(default_factory=dict)
    view: dict[str, MediaState] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What routing one bus message did."""

    delivered: int
    type: str


class Hub:
    """The rooms with sockets on this replica, and the fan-out to them."""

    def __init__(self) -> None:
        self.rooms: dict[str, LocalRoom] = {}

    def add(self, rk: str, peer: str, sink: Sink) -> tuple[bool, Sink | None]:
        """Register a local socket for `peer`.

        Returns:
            (first, previous): whether this is the room's first local socket (subscribe
            to the room), and the sink it replaced on this replica, if any.
        """
        room = self.rooms.get(rk)
        first = room is None
        if room is None:
            room = self.rooms[rk] = LocalRoom()
        previous = room.sinks.get(peer)
        room.sinks[peer] = sink
        return first, previous

    def remove(self, rk: str, peer: str, sink: Sink) -> bool:
        """Unregister `sink`; True if the room has no local socket left (unsubscribe)."""
        room = self.rooms.get(rk)
        if room is None:
            return False
        if room.sinks.get(peer) is sink:
            del room.sinks[peer]
        if room.sinks:
            return False
        del self.rooms[rk]
        return True

    def view(self, rk: str) -> dict[str, MediaState]:
        """The peer view of a room this replica holds (a live dict: `in` checks follow it)."""
        room = self.rooms.get(rk)
        return room.view if room is not None else {}

    def sync_view(self, rk: str, peers: dict[str, MediaState],
                  pending: Iterable[str] = ()) -> None:
        """Replace a room's view (and pending slots) with a fresh snapshot."""
        room = self.rooms.get(rk)
        if room is not None:
            room.view.clear()
            room.view.update(peers)
            room.pending = set(pending) - room.view.keys()

    def add_pending(self, rk: str, peer: str) -> bool:
        """A slot was taken by `peer` with no socket yet; True if that is news here."""
        room = self.rooms.get(rk)
        if room is None or peer in room.view or peer in room.sinks or peer in room.pending:
            return False
        room.pending.add(peer)
        return True

    def drop_pending(self, rk: str, peer: str) -> bool:
        """`peer`'s slot ended before its socket joined; True if it was pending here."""
        room = self.rooms.get(rk)
        if room is None or peer not in room.pending:
            return False
        room.pending.discard(peer)
        return True

    def prune_pending(self, rk: str, members: Container[str]) -> list[str]:
        """Drop the pending peers that are no longer `members`; the ones dropped."""
        room = self.rooms.get(rk)
        if room is None:
            return []
        gone = sorted(p for p in room.pending if p not in members)
        room.pending.difference_update(gone)
        return gone

    def broadcast(self, rk: str, frame: str) -> int:
        """Queue `frame` on every local socket of the room; how many took it."""
        room = self.rooms.get(rk)
        if room is None:
            return 0
        return sum(1 for sink in room.sinks.values() if sink.offer(frame))

    def local_peers(self, rk: str) -> list[str]:
        room = self.rooms.get(rk)
        return list(room.sinks) if room is not None else []

    def deliver(self, rk: str, header: BusHeader, frame: str) -> Delivery:
        """Route one bus message to the room's local sockets; update the view."""
        room = self.rooms.get(rk)
        if room is None:
            return Delivery(0, header.type)
        if header.event == "joined" or header.event == "media":
            room.view[header.src] = header.media or MediaState()
            room.pending.discard(header.src)
        elif header.event == "left":
            room.view.pop(header.src, None)
        if header.kind == "room":
            n = 0
            for peer, sink in room.sinks.items():
                if peer != header.src and sink.offer(frame):
                    n += 1
            return Delivery(n, header.type)
        if header.to is None:
            return Delivery(0, header.type)
        target = room.sinks.get(header.to)
        if target is None:
            return Delivery(0, header.type)
        if header.kind == "kick":
            if target.conn_id != header.conn:
                target.kick(4000, "replaced by a resumed socket")
            return Delivery(0, header.type)
        return Delivery(1 if target.offer(frame) else 0, header.type)
