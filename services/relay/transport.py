"""asyncio protocols between sockets and the TURN core: UDP, TCP/TLS streams, relayed UDP.

The only module that moves relay bytes through asyncio. Hot paths call the core's
`channel_to_peer` / `peer_to_client` directly and send without building output lists;
`channel_to_peer` answers `ToPeer` (out of a relayed socket) or, when the peer is another
allocation of this worker, `ToClient` (in-process delivery: straight to that client).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from typing import TYPE_CHECKING, Any, Final

from .turn.allocation import Client
from .turn.channeldata import StreamFramer
from .turn.errors import BadRequest
from .turn.outputs import ToPeer

if TYPE_CHECKING:
    from .worker import Worker

MAX_STREAM_BUFFER: Final[int] = 1 << 20
_conn_ids = itertools.count(1)


def normalize(addr: Any) -> tuple[str, int]:
    """A socket address as (host, port), dropping IPv6 flow info and scope."""
    return (addr[0], addr[1])


class UdpListener(asyncio.DatagramProtocol):
    """The client-facing UDP socket of one worker."""

    def __init__(self, worker: Worker, *, conn: int = 0) -> None:
        self.worker = worker
        self.server = worker.server
        self.conn = conn  # which of the worker's UDP sockets (see worker.OWN_PORT)
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(addr) != 2:
            addr = (addr[0], addr[1])
        client = Client("udp", addr, self.conn)
        if data and 0x40 <= data[0] < 0x80:
            out = self.server.channel_to_peer(client, data, time.time())
            if type(out) is ToPeer:
                relay = self.worker.relays.get(out.relayed)
                if relay is not None:
                    relay.sendto(out.data, out.peer)
            elif out is not None:
                self.worker.send_client(out.client, out.data)  # type: ignore[union-attr]
            return
        self.worker.dispatch(self.server.handle_client(client, data, time.time()))

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors from clients: nothing to do, and never logged with addresses


class FastUdpListener:
    """The client-facing UDP socket on the compiled path: `loop.add_reader` + batches.

    `Routes.drain` reads up to a batch with recvmmsg and relays the ChannelData whose route
    it has cached; every other datagram comes back here for the Python path, which also
    teaches the cache the route a ChannelData took. The cache is emptied whenever the core
    created or deleted an allocation (its `generation` moved), before the next packet.
    """

    def __init__(self, worker: Worker, sock: socket.socket, fast: Any, *, conn: int = 0) -> None:
        self.worker = worker
        self.conn = conn  # which of the worker's UDP sockets (see worker.OWN_PORT)
        self.server = worker.server
        self.sock = sock
        self.fd = sock.fileno()
        self.routes = fast.Routes()
        self.routes.gso = worker.settings.gso
        self.batch: int = fast.BATCH
        self.generation = self.server.generation
        self.closed = False

    def start(self) -> None:
        """Watch the socket."""
        asyncio.get_running_loop().add_reader(self.fd, self.on_readable)

    def sendto(self, data: bytes, addr: Any) -> None:
        """Send to a client; a full buffer or an ICMP error loses it, as UDP may."""
        try:  # noqa: SIM105  (hot path: cheaper than contextlib.suppress)
            self.sock.sendto(data, addr)
        except OSError:
            pass

    def close(self) -> None:
        """Stop watching and close the socket."""
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().remove_reader(self.fd)
            self.routes.clear()
            self.sock.close()

    def fresh(self) -> None:
        """Empty the route cache if an allocation came or went since it was filled."""
        if self.server.generation != self.generation:
            self.routes.clear()
            self.generation = self.server.generation

    def on_readable(self) -> None:
        routes = self.routes
        for _ in range(16):  # then yield to the other sockets of the loop
            self.fresh()
            now = time.time()
            slow = routes.drain(self.fd, now)
            for data, addr in slow:
                self.handle(data, addr, now)
                self.fresh()
            if routes.last < self.batch:  # a short batch: the socket is empty for now
                return

    def handle(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        """One datagram on the Python path."""
        client = Client("udp", addr, self.conn)
        if data and 0x40 <= data[0] < 0x80:
            out = self.server.channel_to_peer(client, data, now)
            if out is None:
                return
            if type(out) is ToPeer:
                relay = self.worker.relays.get(out.relayed)
                if relay is None:
                    return
                relay.sendto(out.data, out.peer)
            else:
                self.worker.send_client(out.client, out.data)  # type: ignore[union-attr]
            self.learn(client, (data[0] << 8) | data[1], now)
            return
        self.worker.dispatch(self.server.handle_client(client, data, now))

    def learn(self, client: Client, channel: int, now: float) -> None:
        """Cache the route ChannelData on `channel` from `client` takes, if it is common."""
        route = self.server.fast_route(client, channel, now)
        if route is None:
            return
        fd = -1
        if not route.local:
            relay = self.worker.relays.get(route.relayed)
            sock = relay.get_extra_info("socket") if relay is not None else None
            if sock is None:
                return
            fd = sock.fileno()
        with contextlib.suppress(ValueError):  # an address C cannot name: the Python path
            self.routes.add(
                client.address, channel, route.local, fd, route.dest, route.channel,
                route.valid_until, route.src, route.dst,
            )  # fmt: skip


class FastRelaySocket:
    """One allocation's relayed UDP socket on the compiled path (`add_reader` + batches).

    Datagrams from a peer with a cached route (the client bound a channel to it) go to the
    client as ChannelData from C; the rest take `peer_to_client`, which also teaches the
    cache. Quacks like the asyncio transport the worker keeps in `relays`.
    """

    def __init__(self, listener: FastUdpListener, sock: socket.socket,
                 relayed: tuple[str, int]) -> None:  # fmt: skip
        self.listener = listener
        self.worker = listener.worker
        self.server = listener.server
        self.sock = sock
        self.fd = sock.fileno()
        self.relayed = relayed
        self.closed = False
        asyncio.get_running_loop().add_reader(self.fd, self.on_readable)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else default

    def sendto(self, data: bytes, addr: Any) -> None:
        """Send to a peer; a full buffer or an ICMP error loses it, as UDP may."""
        try:  # noqa: SIM105  (hot path: cheaper than contextlib.suppress)
            self.sock.sendto(data, addr)
        except OSError:
            pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().remove_reader(self.fd)
            self.sock.close()

    def on_readable(self) -> None:
        listener = self.listener
        routes, server, port = listener.routes, self.server, self.relayed[1]
        for _ in range(16):
            listener.fresh()
            if self.closed:
                return
            now = time.time()
            slow = routes.drain_peer(self.fd, port, listener.fd, now)
            for data, addr in slow:
                if len(addr) != 2:
                    addr = (addr[0], addr[1])
                out = server.peer_to_client(self.relayed, addr, data, now)
                if out is not None:
                    self.worker.send_client(out.client, out.data)
                    if out.data[0] >= 0x40:  # ChannelData: the client bound a channel
                        self.learn(addr, now)
                listener.fresh()
            if routes.last < listener.batch:
                return

    def learn(self, peer: tuple[str, int], now: float) -> None:
        route = self.server.fast_peer_route(self.relayed, peer, now)
        if route is not None:
            with contextlib.suppress(ValueError):  # an address C cannot name: the Python path
                self.listener.routes.add_peer(
                    self.relayed[1], peer, route.dest, route.channel, route.valid_until,
                    route.src,
                )  # fmt: skip


class RelaySocket(asyncio.DatagramProtocol):
    """One allocation's relayed UDP socket: datagrams from peers go to the client."""

    def __init__(self, worker: Worker, relayed: tuple[str, int]) -> None:
        self.worker = worker
        self.server = worker.server
        self.relayed = relayed

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(addr) != 2:
            addr = (addr[0], addr[1])
        out = self.server.peer_to_client(self.relayed, addr, data, time.time())
        if out is not None:
            self.worker.send_client(out.client, out.data)

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP unreachable from a peer


class StreamConnection(asyncio.Protocol):
    """A client on TCP or TLS: RFC 8656 §12.5 framing of STUN and ChannelData."""

    def __init__(self, worker: Worker, kind: str) -> None:
        self.worker = worker
        self.kind = kind
        self.framer = StreamFramer()
        self.client: Client | None = None
        self.transport: asyncio.Transport | None = None
        self.opened = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("0.0.0.0", 0)
        conn = next(_conn_ids)
        self.client = Client(self.kind, normalize(peer), conn)
        self.worker.streams[conn] = self

    def data_received(self, data: bytes) -> None:
        assert self.client is not None and self.transport is not None
        try:
            frames = self.framer.feed(data)
        except BadRequest:
            self.transport.close()
            return
        server = self.worker.server
        for frame in frames:
            now = time.time()
            if 0x40 <= frame[0] < 0x80:
                out = server.channel_to_peer(self.client, frame, now)
                if type(out) is ToPeer:
                    relay = self.worker.relays.get(out.relayed)
                    if relay is not None:
                        relay.sendto(out.data, out.peer)
                elif out is not None:
                    self.worker.send_client(out.client, out.data)  # type: ignore[union-attr]
            else:
                self.worker.dispatch(server.handle_client(self.client, frame, now))

    def write(self, data: bytes) -> None:
        """Send to the client unless it is too slow to keep up (then drop)."""
        transport = self.transport
        if transport is not None and transport.get_write_buffer_size() < MAX_STREAM_BUFFER:
            transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.client is None:
            return
        self.worker.streams.pop(self.client.conn, None)
        self.worker.dispatch(self.worker.server.client_closed(self.client, time.time()))
