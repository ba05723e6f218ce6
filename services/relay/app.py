"""The relay's lifespan: bind sockets, fork workers, serve health/metrics, heartbeat, drain.

The supervisor binds every listening socket itself (so a port in use is one clear line
before anything starts), forks one worker per core with its own SO_REUSEPORT sockets,
then runs a small control plane: the HTTP side port, NATS heartbeats and control, and
SIGTERM -> drain -> exit 0 once every worker has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import multiprocessing
import os
import signal
import socket
import ssl
import time
from multiprocessing.process import BaseProcess
from typing import Final

from pydantic import ValidationError
from pydantic_settings import SettingsError as PydanticSettingsError

from services.common.messages import RelayControl, RelayHeartbeat

from .bus import FleetLink, make_heartbeat
from services.common.serve import settings_source_error

from .errors import ConfigError, StartupError
from .http import HealthServer
from .metrics import make_registry
from .settings import RelaySettings
from .shared import SharedState
from .worker import ListenSockets, worker_main

log = logging.getLogger("parley.relay")

UDP_LISTEN_BUFFER: Final[int] = 4 << 20


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def set_buffers(sock: socket.socket, size: int) -> None:
    """Ask for `size`-byte receive/send buffers (the kernel caps them at rmem/wmem_max):
    a worker descheduled for a few ms must not overflow the default 208 KiB."""
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, option, size)


def _bind(kind: int, address: tuple[str, int], what: str, *, reuseport: bool) -> socket.socket:
    sock = socket.socket(_family(address[0]), kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if kind == socket.SOCK_DGRAM:
            set_buffers(sock, UDP_LISTEN_BUFFER)
        sock.bind(address)
        if kind == socket.SOCK_STREAM:
            sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise StartupError(f"cannot listen on {what} {address[0]}:{address[1]}: {reason}") from exc
    return sock


def bind_worker_sockets(settings: RelaySettings, workers: int) -> list[ListenSockets]:
    """One set of SO_REUSEPORT listening sockets per worker, plus worker k's own UDP and
    TCP port (`worker_port_base` + k, bound without SO_REUSEPORT) when that is set."""
    listen = settings.listen_address()
    tls = settings.tls_address()
    own_ports = settings.worker_listen_ports()
    result: list[ListenSockets] = []
    try:
        for index in range(workers):
            udp = _bind(socket.SOCK_DGRAM, listen, "UDP", reuseport=True)
            sockets = ListenSockets(udp=udp, tcp=udp)
            result.append(sockets)
            sockets.tcp = _bind(socket.SOCK_STREAM, listen, "TCP", reuseport=True)
            if tls is not None:
                sockets.tls = _bind(socket.SOCK_STREAM, tls, "TLS", reuseport=True)
            if own_ports:
                own = (listen[0], own_ports[index])
                sockets.own_udp = _bind(socket.SOCK_DGRAM, own, "worker UDP", reuseport=False)
                sockets.own_tcp = _bind(socket.SOCK_STREAM, own, "worker TCP", reuseport=False)
    except StartupError:
        for s in result:
            for sock in s.all():
                sock.close()
        raise
    return result


def check_settings(settings: RelaySettings) -> None:
    """Checks that need the file system or the network; `ConfigError` or `StartupError`."""
    try:
        relay_ip = settings.effective_relay_ip()
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    probe = socket.socket(_family(relay_ip), socket.SOCK_DGRAM)
    try:
        probe.bind((relay_ip, 0))
    except OSError as exc:
        raise StartupError(f"--relay-ip {relay_ip} is not an address of this host") from exc
    finally:
        probe.close()
    if settings.tls_cert is not None and settings.tls_key is not None:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                settings.tls_cert, settings.tls_key
            )
        except (OSError, ssl.SSLError) as exc:
            raise StartupError(f"cannot load --tls-cert/--tls-key: {exc}") from exc


class Supervisor:
    """Owns the worker processes and the control plane."""

    def __init__(self, settings: RelaySettings, procs: list[BaseProcess], shared: SharedState,
                 http_sock: socket.socket | None) -> None:  # fmt: skip
        self.settings = settings
        self.procs = procs
        self.shared = shared
        self.http_sock = http_sock
        self.stop = asyncio.Event()
        self._last_bytes = 0.0
        self._last_time = time.monotonic()

    def healthy(self) -> bool:
        """All workers alive (or finished after a drain)."""
        return all(p.is_alive() or p.exitcode == 0 for p in self.procs)

    def draining_applied(self) -> bool:
        """A drain was asked for and every worker refuses new allocations already.

        Heartbeats report Draining only from then on, so whoever sees Draining (rooms,
        the operator) can rely on new allocations being refused.
        """
        return bool(self.shared.get("draining")) and self.shared.all("draining")

    def ready(self) -> bool:
        """Serving and not draining."""
        return (
            not self.shared.get("draining")
            and self.shared.all("ready")
            and all(p.is_alive() for p in self.procs)
        )

    def drain(self, deadline_seconds: float | None = None) -> None:
        """Tell every worker to drain."""
        if not self.shared.get("draining"):
            seconds = self.settings.drain_deadline if deadline_seconds is None else deadline_seconds
            self.shared.set("deadline", time.time() + seconds)
            self.shared.set("draining", 1)
            log.info(
                "draining: %d allocations, deadline %.0f s",
                self.shared.total("allocations"),
                seconds,
            )

    def _on_signal(self) -> None:
        """First SIGTERM/SIGINT drains then exits; a second one ends the drain at once."""
        if self.shared.get("stopping"):
            self.shared.set("deadline", time.time())
            log.info("second signal: stopping now")
        self.drain()
        self.shared.set("stopping", 1)

    def on_control(self, request: RelayControl) -> None:
        """Apply a control request from the operator."""
        if request.action == "drain":
            self.drain(request.deadline_seconds)
        elif request.action == "undrain":
            if not self.shared.get("stopping"):
                self.shared.set("draining", 0)
                self.shared.set("deadline", 0)
        else:
            self.reload_secrets()

    def reload_secrets(self) -> None:
        """Ask workers to re-read `--secret-file`."""
        self.shared.set("secrets_generation", self.shared.get("secrets_generation") + 1)
        log.info("secrets reload requested")

    def heartbeat(self) -> RelayHeartbeat:
        """This relay's heartbeat (sums over workers)."""
        s = self.settings
        now = time.monotonic()
        total = self.shared.total("bytes_relayed")
        rate = max(0.0, (total - self._last_bytes) / max(now - self._last_time, 1e-3))
        self._last_bytes, self._last_time = total, now
        port = s.public_port or s.listen_address()[1]
        tls = s.tls_address()
        return make_heartbeat(
            relay_id=s.relay_id,
            public_host=s.public_host or s.effective_relay_ip(),
            udp_port=port,
            tcp_port=s.public_tcp_port or port,
            tls_port=tls[1] if tls else None,
            worker_ports=s.worker_listen_ports(),
            realm=s.realm,
            allocations=int(self.shared.total("allocations")),
            capacity=s.total_quota,
            bytes_per_second=rate,
            draining=self.draining_applied(),
        )

    async def run(self) -> int:
        """Serve until every worker has exited; the exit code of the relay."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal)
        loop.add_signal_handler(signal.SIGHUP, self.reload_secrets)
        http = None
        if self.http_sock is not None:
            http = HealthServer(
                self.http_sock, healthy=self.healthy, ready=self.ready,
                registry=make_registry(self.shared),
            )  # fmt: skip
            await http.start()
        link = None
        if self.settings.nats_url:
            link = FleetLink(
                self.settings.nats_url, self.settings.relay_id,
                interval=self.settings.heartbeat_interval, heartbeat=self.heartbeat,
                on_control=self.on_control,
            )  # fmt: skip
            await link.start()
        failed = False
        while any(p.is_alive() for p in self.procs):
            if any(p.exitcode not in (None, 0) for p in self.procs) and not failed:
                failed = True
                log.error("a worker exited unexpectedly; stopping the relay")
                for p in self.procs:
                    if p.is_alive() and p.pid is not None:
                        os.kill(p.pid, signal.SIGTERM)
                self.shared.set("deadline", time.time())
                self.shared.set("draining", 1)
                self.shared.set("stopping", 1)
            await asyncio.sleep(0.2)
        if link is not None:
            await link.close()
        if http is not None:
            await http.close()
        codes = [p.exitcode for p in self.procs]
        log.info("relay stopped")
        return 0 if all(c == 0 for c in codes) and not failed else 1


def run(settings: RelaySettings) -> int:
    """Run the relay in the foreground; returns the process exit code."""
    from services.common.logs import setup_logging

    setup_logging(settings.log_level, service="relay")
    check_settings(settings)
    workers = settings.effective_workers()
    sockets = bind_worker_sockets(settings, workers)
    http_sock = None
    if settings.http_port:
        http_sock = _bind(
            socket.SOCK_STREAM, (settings.http_host, settings.http_port), "HTTP", reuseport=False
        )
    shared = SharedState(workers)
    context = multiprocessing.get_context("fork")
    procs: list[BaseProcess] = []
    everything = [s for ls in sockets for s in ls.all()]
    if http_sock is not None:
        everything.append(http_sock)
    for index, own in enumerate(sockets):
        mine = {id(s) for s in own.all()}
        own.extra = [s for s in everything if id(s) not in mine]
        proc = context.Process(
            target=worker_main, args=(settings, own, index, shared), name=f"relay-worker-{index}"
        )
        proc.start()
        procs.append(proc)
    for ls in sockets:
        for sock in ls.all():
            sock.close()
    own_ports = settings.worker_listen_ports()
    log.info(
        "relay %s: %d workers, realm %s, ports %s, worker ports %s, NATS %s",
        settings.relay_id, workers, settings.realm, settings.ports,
        f"{own_ports[0]}-{own_ports[-1]}" if own_ports else "off",
        "on" if settings.nats_url else "off",
    )  # fmt: skip
    supervisor = Supervisor(settings, procs, shared, http_sock)
    try:
        import uvloop

        return uvloop.run(supervisor.run())
    except ImportError:
        return asyncio.run(supervisor.run())


def load_settings(**overrides: object) -> RelaySettings:
    """Settings from the environment plus explicit flags; `ConfigError` in one line."""
    try:
        return RelaySettings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = "_".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        option = (
            f"--{where.replace('_', '-')} (PARLEY_RELAY_{where.upper()}): " if where else ""
        )
        raise ConfigError(f"{option}{message}") from exc
    except PydanticSettingsError as exc:  # a value the environment source could not decode
        raise ConfigError(f"{settings_source_error(exc, 'PARLEY_RELAY_')}") from exc


with contextlib.suppress(ImportError):
    import uvloop  # noqa: F401  (imported early so forked workers share the module)
