"""One relay worker process: listeners, relayed sockets, timers, drain; the asyncio shell.

The supervisor binds the listening sockets (SO_REUSEPORT, one set per worker) and forks;
each worker runs its own event loop and `TurnServer`, publishes counters into its slot of
the shared block, and obeys the drain flag. Logs carry counts, never client addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import random
import signal
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import Final

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from services.common.telemetry import setup_tracing, shutdown_tracing, traceparent_context

from .fastpath import load as load_fastpath
from .settings import RelaySettings
from .shared import ERROR_CODES, SharedState
from .tracehints import TraceHints, follow_hints
from .transport import (
    FastRelaySocket,
    FastUdpListener,
    RelaySocket,
    StreamConnection,
    UdpListener,
)
from .turn.allocation import Client
from .turn.meter import Meter
from .turn.policy import parse_networks
from .turn.server import CloseRelay, OpenRelay, Output, ServerConfig, ToClient, ToPeer, TurnServer

log = logging.getLogger("parley.relay.worker")

TICK: Final[float] = 0.5
RELAY_SOCKET_BUFFER: Final[int] = 1 << 20
STREAM_IDLE: Final[float] = 60.0


#: `Client.conn` of a UDP client of the worker's own port (`--worker-port-base`); 0 is the
#: shared port. A client's 5-tuple includes the port it reached, so the same source address
#: on both ports is two clients, each answered from the port it used.
OWN_PORT: Final[int] = 1


@dataclass
class ListenSockets:
    """Sockets the supervisor bound for one worker: the shared (SO_REUSEPORT) ones, and
    the worker's own UDP and TCP port when `--worker-port-base` is set."""

    udp: socket.socket
    tcp: socket.socket
    tls: socket.socket | None = None
    own_udp: socket.socket | None = None
    own_tcp: socket.socket | None = None
    extra: list[socket.socket] = field(default_factory=list)

    def all(self) -> list[socket.socket]:
        """Every socket of this set."""
        return [s for s in (self.udp, self.tcp, self.tls, self.own_udp, self.own_tcp)
                if s is not None]  # fmt: skip


def _ip_literals(*hosts: str | None) -> tuple[str, ...]:
    """The hosts that are IP addresses (not wildcards, not names)."""
    out: list[str] = []
    for host in hosts:
        with contextlib.suppress(ValueError, AttributeError):
            ip = ipaddress.ip_address(host or "")
            if not ip.is_unspecified:
                out.append(str(ip))
    return tuple(out)


def server_config(settings: RelaySettings, *, workers: int = 1) -> ServerConfig:
    """The core's configuration from the relay settings (quota split across workers)."""
    listen_host, listen_port = settings.listen_address()
    tls = settings.tls_address()
    return ServerConfig(
        realm=settings.realm,
        secrets=tuple(settings.secrets()),
        relay_ip=settings.effective_relay_ip(),
        relay_ports=settings.port_range(),
        allow_peer=parse_networks(settings.allow_peer),
        listen_ports=tuple(
            p for p in (listen_port, tls[1] if tls else None, settings.public_port,
                        settings.public_tcp_port) if p is not None
        ) + tuple(settings.worker_listen_ports()),
        own_ips=_ip_literals(listen_host, tls[0] if tls else None, settings.public_host),
        user_quota=settings.user_quota,
        total_quota=max(1, -(-settings.total_quota // workers)),
        max_lifetime=float(settings.max_lifetime),
        nonce_lifetime=float(settings.nonce_lifetime),
        request_rate=settings.request_rate,
        request_burst=settings.request_burst,
        bandwidth=float(settings.bandwidth),
        channel_max=0x7FFF if settings.rfc5766_channels else 0x4FFF,
        local_delivery=settings.local_delivery,
    )


def worker_ports(low: int, high: int, index: int, count: int) -> tuple[int, int]:
    """This worker's share of the relayed port range (disjoint slices)."""
    size = (high - low + 1) // count
    if size < 1:
        return low, high
    start = low + index * size
    return start, (high if index == count - 1 else start + size - 1)


class Worker:
    """The asyncio shell around one `TurnServer`."""

    def __init__(
        self, settings: RelaySettings, sockets: ListenSockets, *, index: int, shared: SharedState
    ) -> None:
        self.settings = settings
        self.sockets = sockets
        self.index = index
        self.shared = shared
        self.fast = load_fastpath(settings.fastpath)
        self.server = TurnServer(
            server_config(settings, workers=shared.workers), live_ports=shared.live_ports,
            meter_factory=self.fast.Meter if self.fast is not None else Meter,
        )  # fmt: skip
        self.relay_ip = settings.effective_relay_ip()
        self.ports = worker_ports(*settings.port_range(), index, shared.workers)
        self.relays: dict[tuple[str, int], asyncio.DatagramTransport | FastRelaySocket] = {}
        self.streams: dict[int, StreamConnection] = {}
        self.udp: asyncio.DatagramTransport | FastUdpListener | None = None
        self.fast_udp: FastUdpListener | None = None
        self.own_udp: asyncio.DatagramTransport | FastUdpListener | None = None  # OWN_PORT
        self.fast_own: FastUdpListener | None = None
        self.stop = asyncio.Event()
        self.drain_deadline: float | None = None
        self.secrets_generation = shared.get("secrets_generation")
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Future[None]] = set()
        self._signalled = False
        self.parent_pid = os.getppid()
        # trace hints from rooms, only when this relay exports traces and has NATS
        self.hints: TraceHints | None = None
        if settings.otel_exporter != "none" and settings.nats_url:
            self.hints = TraceHints()
        self._opening: dict[Client, int] = {}  # Allocate start (ns), for the span

    # -- output dispatch -----------------------------------------------------------
    def dispatch(self, outputs: list[Output]) -> None:
        """Carry out what the core asked for."""
        for out in outputs:
            if type(out) is ToPeer:
                relay = self.relays.get(out.relayed)
                if relay is not None:
                    relay.sendto(out.data, out.peer)
            elif type(out) is ToClient:
                self.send_client(out.client, out.data)
            elif type(out) is OpenRelay:
                self._open_relay(out)
            elif type(out) is CloseRelay:
                transport = self.relays.pop(out.relayed, None)
                if transport is not None:
                    transport.close()

    def send_client(self, client: Client, data: bytes) -> None:
        """Send bytes to a client on its own transport."""
        if client.transport == "udp":
            udp = self.own_udp if client.conn == OWN_PORT else self.udp
            if udp is not None:
                udp.sendto(data, client.address)
        else:
            stream = self.streams.get(client.conn)
            if stream is not None:
                stream.write(data)

    def _bind_relay(self) -> socket.socket | None:
        low, high = self.ports
        family = socket.AF_INET6 if ":" in self.relay_ip else socket.AF_INET
        span = high - low + 1
        start = random.randrange(span)
        for i in range(min(span, 64)):
            port = low + (start + i) % span
            sock = socket.socket(family, socket.SOCK_DGRAM)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RELAY_SOCKET_BUFFER)
            try:
                sock.bind((self.relay_ip, port))
            except OSError as exc:
                sock.close()
                if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                return None
            sock.setblocking(False)
            return sock
        return None

    def _open_relay(self, request: OpenRelay) -> None:
        if self.hints is not None:
            self._opening[request.client] = time.time_ns()
        sock = self._bind_relay()
        if sock is None:
            self._opening.pop(request.client, None)
            self.dispatch(self.server.relay_failed(request.client, time.time()))
            return
        task = asyncio.ensure_future(self._attach_relay(request.client, sock))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _attach_relay(self, client: Client, sock: socket.socket) -> None:
        relayed = (self.relay_ip, sock.getsockname()[1])
        # the listener that answers this client: a cached peer route sends through it
        fast = self.fast_own if client.conn == OWN_PORT and client.transport == "udp" \
            else self.fast_udp
        if fast is not None and not fast.closed:
            self.relays[relayed] = FastRelaySocket(fast, sock, relayed)
            self.dispatch(self.server.relay_opened(client, relayed, time.time()))
            self._trace_allocation(client)
            return
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: RelaySocket(self, relayed), sock=sock
            )
        except OSError:
            sock.close()
            self._opening.pop(client, None)
            self.dispatch(self.server.relay_failed(client, time.time()))
            return
        self.relays[relayed] = transport
        self.dispatch(self.server.relay_opened(client, relayed, time.time()))
        self._trace_allocation(client)

    def _trace_allocation(self, client: Client) -> None:
        """A `turn allocate` span in the join's trace, when rooms hinted this credential."""
        started = self._opening.pop(client, None)
        alloc = self.server.allocation_for(client)
        if self.hints is None or started is None or alloc is None:
            return
        parent = traceparent_context(self.hints.traceparent_for(alloc.username,
                                                                now=time.monotonic()))
        if parent is None:
            return
        span = trace.get_tracer("parley.relay").start_span(
            "turn allocate", context=parent, kind=SpanKind.SERVER, start_time=started,
            attributes={"turn.transport": client.transport, "turn.worker": self.index},
            record_exception=False)
        span.end()

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        """Attach the pre-bound sockets to the event loop."""
        loop = asyncio.get_running_loop()
        self.fast_udp, self.udp = await self._listen_udp(self.sockets.udp, 0)
        if self.sockets.own_udp is not None:
            self.fast_own, self.own_udp = await self._listen_udp(self.sockets.own_udp, OWN_PORT)
        for tcp in (self.sockets.tcp, self.sockets.own_tcp):
            if tcp is not None:
                self._servers.append(
                    await loop.create_server(lambda: StreamConnection(self, "tcp"), sock=tcp)
                )
        if self.sockets.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            assert self.settings.tls_cert is not None
            context.load_cert_chain(self.settings.tls_cert, self.settings.tls_key)
            self._servers.append(
                await loop.create_server(
                    lambda: StreamConnection(self, "tls"), sock=self.sockets.tls, ssl=context
                )
            )

    async def _listen_udp(
        self, sock: socket.socket, conn: int
    ) -> tuple[FastUdpListener | None, asyncio.DatagramTransport | FastUdpListener]:
        """Serve one client-facing UDP socket; its clients are `Client("udp", addr, conn)`."""
        if self.fast is not None:
            fast = FastUdpListener(self, sock, self.fast, conn=conn)
            fast.start()
            return fast, fast
        udp, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: UdpListener(self, conn=conn), sock=sock
        )
        return None, udp

    def begin_drain(self, deadline: float | None = None) -> None:
        """Refuse new allocations; close the rest at the deadline."""
        if self.drain_deadline is None:
            self.server.draining = True
            self.drain_deadline = deadline or time.time() + self.settings.drain_deadline
            log.info("worker %d draining, %d allocations", self.index, self.server.allocation_count)
        elif deadline is not None:
            self.drain_deadline = min(self.drain_deadline, deadline)

    def end_drain(self) -> None:
        """Undo a drain requested over NATS."""
        self.server.draining = False
        self.drain_deadline = None

    def tick(self) -> None:
        """Expire state, follow the control block, publish counters.

        A drain (from NATS or a signal) refuses new allocations and closes the rest at
        the deadline; only a signal (`stopping`) also ends the process once drained, so
        an operator's drain leaves a live, empty relay for it to delete or undrain.
        """
        now = time.time()
        self.dispatch(self.server.expire(now))
        shared = self.shared
        stopping = self._signalled or bool(shared.get("stopping"))
        if shared.get("draining") or stopping:
            self.begin_drain(shared.get("deadline") or None)
        elif self.drain_deadline is not None:
            self.end_drain()
        generation = shared.get("secrets_generation")
        if generation != self.secrets_generation:
            self.secrets_generation = generation
            with contextlib.suppress(ValueError):
                self.server.set_secrets(self.settings.secrets())
        mono = time.monotonic()
        for stream in list(self.streams.values()):
            if (
                stream.client is not None
                and mono - stream.opened > STREAM_IDLE
                and self.server.allocation_for(stream.client) is None
                and stream.transport is not None
            ):
                stream.transport.close()
        self.publish()
        if os.getppid() != self.parent_pid:  # supervisor gone (non-Linux fallback)
            self.stop.set()
        if self.drain_deadline is not None and now >= self.drain_deadline:
            self.dispatch(self.server.close_all())
        if stopping and self.server.allocation_count == 0:
            self.stop.set()

    def publish(self) -> None:
        """Write this worker's counters into its shared slot."""
        s, i, stats = self.shared, self.index, self.server.stats
        packets, size = self.server.relayed_totals()
        s.worker_set(i, "allocations", self.server.allocation_count)
        s.worker_set(i, "packets_relayed", packets)
        s.worker_set(i, "bytes_relayed", size)
        s.worker_set(i, "allocations_created", stats.allocations_created)
        s.worker_set(i, "rate_limited", stats.rate_limited)
        s.worker_set(i, "malformed", stats.malformed)
        dropped, local, gso = stats.dropped, stats.local_delivered, 0
        for fast in (self.fast_udp, self.fast_own):
            if fast is not None:
                dropped += fast.routes.dropped
                local += fast.routes.local_delivered
                gso += fast.routes.gso_sent
        s.worker_set(i, "dropped", dropped)
        s.worker_set(i, "local_delivered", local)
        s.worker_set(i, "gso_sent", gso)
        s.worker_set(i, "tcp_connections", len(self.streams))
        s.worker_set(i, "draining", 1 if self.server.draining else 0)
        for code in ERROR_CODES:
            s.worker_set(i, f"error_{code}", stats.errors.get(code, 0))

    def _on_signal(self) -> None:
        if self._signalled:  # a second signal ends the drain now
            self.drain_deadline = time.time()
        self._signalled = True
        self.begin_drain()

    async def run(self) -> None:
        """Serve until drained."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal)
        await self.start()
        if self.hints is not None and self.settings.nats_url:
            hints = asyncio.ensure_future(
                follow_hints(self.settings.nats_url, self.settings.relay_id, self.hints))
            self._tasks.add(hints)
        self.shared.worker_set(self.index, "ready", 1)
        while not self.stop.is_set():
            self.tick()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), TICK)
        for server in self._servers:
            server.close()
        for stream in list(self.streams.values()):
            if stream.transport is not None:
                stream.transport.close()
        for udp in (self.udp, self.own_udp):
            if udp is not None:
                udp.close()
        self.publish()
        log.info("worker %d stopped", self.index)


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker if the supervisor dies (no orphaned relays)."""
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def worker_main(
    settings: RelaySettings, sockets: ListenSockets, index: int, shared: SharedState
) -> None:
    """Entry point of a forked worker process."""
    from services.common.logs import setup_logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # until the loop installs its handlers
    _die_with_parent()
    setup_logging(settings.log_level, service="relay")
    setup_tracing("relay", settings.otel_exporter)  # after the fork: the exporter's thread
    for extra in sockets.extra:
        extra.close()
    shared.worker_set(index, "pid", os.getpid())
    worker = Worker(settings, sockets, index=index, shared=shared)
    try:
        import uvloop

        uvloop.run(worker.run())
    except ImportError:
        asyncio.run(worker.run())
    shutdown_tracing()  # multiprocessing ends a worker with os._exit: no atexit flush
    shared.worker_set(index, "stopped", 1)
