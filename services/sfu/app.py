"""The SFU's lifespan: bind the UDP port, serve health/metrics, join the fleet, drain.

One asyncio process: a datagram protocol hands every datagram straight to the node (no
queue), a timer ticks it, `SfuLink` carries requests and heartbeats. SIGTERM (or a `drain`
control) sets draining; the process exits 0 once no PeerConnection is left or at the
drain deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import time
from typing import Final

from pydantic import ValidationError
from pydantic_settings import SettingsError as PydanticSettingsError

from services.common.messages import SfuControl, SfuHeartbeat, SfuSessionReply, SfuSessionRequest
from services.common.serve import settings_source_error
from services.relay.http import HealthServer

from .bus import SfuLink
from .errors import ConfigError, StartupError
from .metrics import make_registry
from .node import Address, SfuNode
from .settings import SfuSettings

log = logging.getLogger("parley.sfu")
TICK: Final[float] = 0.2
UDP_BUFFER: Final[int] = 4 << 20


class SfuProtocol(asyncio.DatagramProtocol):
    """Every datagram to the node, synchronously; a bug costs one packet, never the loop."""

    def __init__(self) -> None:
        self.node: SfuNode | None = None
        self.errors = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        node = self.node
        if node is None:
            return
        try:
            node.datagram(data, (addr[0], addr[1]), now=time.monotonic())
        except Exception as exc:  # never a traceback with an address in it
            self.errors += 1
            log.debug("datagram dropped: %s", type(exc).__name__)

    def error_received(self, exc: Exception) -> None:
        return None  # ICMP unreachable from a browser that went away


def _bind_udp(address: Address) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET,
                         socket.SOCK_DGRAM)
    try:
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, UDP_BUFFER)
        sock.bind(address)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise StartupError(f"cannot listen on UDP {address[0]}:{address[1]}: {reason}") from exc
    return sock


def _bind_http(address: Address) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on HTTP {address[0]}:{address[1]}: "
                           f"{exc.strerror}") from exc
    return sock


class Sfu:
    """The running process: node, sockets, link, and the drain state."""

    def __init__(self, settings: SfuSettings, udp: socket.socket,
                 http: socket.socket | None) -> None:
        self.settings = settings
        self.udp = udp
        self.http_sock = http
        self.stop = asyncio.Event()
        self.deadline: float | None = None
        self.node: SfuNode | None = None
        self.link: SfuLink | None = None

    def heartbeat(self) -> SfuHeartbeat:
        assert self.node is not None
        load = self.node.load
        return SfuHeartbeat(sfu_id=self.settings.id, rooms=len(self.node.rooms),
                            peers=self.node.peer_count(), streams=load.streams,
                            packets_per_second=load.packets_per_second, cpu=load.cpu,
                            capacity=self.settings.max_peers, draining=self.node.draining,
                            sent_at=time.time())

    def on_request(self, request: SfuSessionRequest) -> SfuSessionReply:
        assert self.node is not None
        return self.node.request(request, now=time.monotonic())

    def on_control(self, control: SfuControl) -> None:
        if control.action == "drain":
            self.drain(control.deadline_seconds)
        elif self.node is not None:
            self.node.draining = False
            self.deadline = None
            log.info("drain cancelled")

    def drain(self, seconds: float | None = None) -> None:
        """No new rooms from now on; exit when the last call ends or at the deadline."""
        if self.node is None:
            self.stop.set()
            return
        if not self.node.draining:
            log.info("draining: %d peer connections", self.node.peer_count())
        self.node.draining = True
        span = self.settings.drain_deadline if seconds is None else seconds
        deadline = time.monotonic() + span
        self.deadline = deadline if self.deadline is None else min(self.deadline, deadline)
        if self.link is not None:
            asyncio.get_running_loop().create_task(self.link.publish())

    def ready(self) -> bool:
        node = self.node
        link_ok = self.link is None or self.link.connected
        return node is not None and not node.draining and link_ok

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(SfuProtocol, sock=self.udp)
        bound = self.udp.getsockname()[1]
        node = SfuNode(send=transport.sendto,
                       candidate=self.settings.candidate_address(bound),
                       max_peers=self.settings.max_peers, remb_bps=self.settings.remb_bps,
                       consent_timeout=self.settings.consent_timeout)
        self.node = node
        protocol.node = node
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.drain)
        http = None
        if self.http_sock is not None:
            http = HealthServer(self.http_sock, healthy=lambda: True, ready=self.ready,
                                registry=make_registry(node))
            await http.start()
        if self.settings.nats_url:
            self.link = SfuLink(self.settings.nats_url, self.settings.id,
                                interval=self.settings.heartbeat_interval,
                                heartbeat=self.heartbeat, on_request=self.on_request,
                                on_control=self.on_control)
            await self.link.start()
        log.info("sfu %s ready: UDP port %d, NATS %s", self.settings.id, bound,
                 "on" if self.settings.nats_url else "off")
        while not self.stop.is_set():
            now = time.monotonic()
            node.tick(now=now)
            if node.draining and (node.peer_count() == 0 or
                                  (self.deadline is not None and now >= self.deadline)):
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), TICK)
        log.info("sfu stopping: %d peer connections left", node.peer_count())
        if self.link is not None:
            await self.link.close()
        if http is not None:
            await http.close()
        transport.close()
        return 0


def run(settings: SfuSettings) -> int:
    """Run the SFU in the foreground; the process exit code."""
    from services.common.logs import setup_logging

    setup_logging(settings.log_level, service="sfu")
    udp = _bind_udp(settings.listen_address())
    http = _bind_http((settings.http_host, settings.http_port)) if settings.http_port else None
    sfu = Sfu(settings, udp, http)
    try:
        import uvloop

        return uvloop.run(sfu.run())
    except ImportError:
        return asyncio.run(sfu.run())


def load_settings(**overrides: object) -> SfuSettings:
    """Settings from the environment plus explicit flags; `ConfigError` in one line."""
    try:
        return SfuSettings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "_".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        option = f"--{where.replace('_', '-')} (PARLEY_SFU_{where.upper()}): " if where else ""
        raise ConfigError(f"{option}{message}") from exc
    except PydanticSettingsError as exc:
        raise ConfigError(settings_source_error(exc, "PARLEY_SFU_")) from exc
