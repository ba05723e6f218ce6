"""A real coturn (`turnserver`, Debian's coturn package) for tests: REST auth
(`use-auth-secret` + `static-auth-secret`), loopback only, on free ports.

`start_coturn()` waits until it answers a STUN Binding request; `Coturn.kill()` is a crash
(SIGKILL), `Coturn.restart()` brings it back on the same ports.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from services.common.infra import free_port

RELAY_PORTS = 40  # relayed ports per coturn: a few calls' worth


def available() -> bool:
    return shutil.which("turnserver") is not None


@dataclass
class Coturn:
    """One turnserver process; `url` is its TURN URL (UDP)."""

    port: int
    secret: str = field(repr=False)
    min_port: int
    max_port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def argv(self) -> list[str]:
        return ["turnserver", "-n", "--no-cli", "--listening-ip", "127.0.0.1",
                "--relay-ip", "127.0.0.1", "--listening-port", str(self.port),
                "--min-port", str(self.min_port), "--max-port", str(self.max_port),
                "--use-auth-secret", "--static-auth-secret", self.secret, "--realm", "parley",
                # both test peers' relayed addresses are on loopback
                "--allow-loopback-peers", "--no-tls", "--no-dtls", "--no-stdout-log",
                "--log-file", "/dev/null", "--simple-log", "--no-software-attribute",
                "--pidfile", str(self.workdir / "turnserver.pid"),
                "--userdb", str(self.workdir / "turndb")]

    def start(self) -> Coturn:
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=self.workdir)
        wait_stun(self.port, self.proc)
        return self

    def kill(self) -> None:
        """Crash it (SIGKILL), as a dying server would go."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_coturn(secret: str) -> Coturn:
    """A coturn on a free port with its own small relayed-port range."""
    port = free_port("127.0.0.1", udp_too=True)
    low = free_port("127.0.0.1", udp_too=True)
    low = min(low, 65535 - RELAY_PORTS)
    return Coturn(port, secret, low, low + RELAY_PORTS - 1,
                  Path(tempfile.mkdtemp(prefix="parley-coturn-"))).start()


def wait_stun(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Wait until something answers a STUN Binding request on UDP `port`."""
    request = bytes.fromhex("000100002112a442") + os.urandom(12)
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"turnserver exited with code {proc.returncode}")
            s.sendto(request, ("127.0.0.1", port))
            try:
                s.recv(2048)
                return
            except OSError:
                continue
    raise RuntimeError(f"turnserver did not answer on UDP {port} within {timeout:.0f} s")
