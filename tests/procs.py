"""Run Parley services as real processes for tests: start, wait for readiness, stop."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from services.common.infra import free_port

# every service's output of this test run, removed when the run ends
_LOG_DIR = tempfile.mkdtemp(prefix="parley-test-logs-")
atexit.register(shutil.rmtree, _LOG_DIR, True)


@dataclass
class ServiceProcess:
    """A `python -m services <args>` child with its output in a temp file."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)


def wait_http(url: str, proc: subprocess.Popen[bytes], *, timeout: float = 30,
              log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = log.read_text(errors="replace") if log else ""
            raise RuntimeError(f"process exited with {proc.returncode}:\n{out[-3000:]}")
        with contextlib.suppress(Exception), urllib.request.urlopen(url, timeout=1) as r:
            if r.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready in {timeout}s")


def start_service(name: str, args: list[str], env: dict[str, str], *, port: int | None = None,
                  ready_path: str = "/readyz") -> ServiceProcess:
    """Start `python -m services <name> --host 127.0.0.1 --port P <args>` and wait for it."""
    port = port or free_port()
    fd, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".log", dir=_LOG_DIR)
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "services", name, "--host", "127.0.0.1", "--port", str(port), *args],
        stdout=fd, stderr=subprocess.STDOUT, env=full_env, stdin=subprocess.DEVNULL,
    )
    os.close(fd)
    sp = ServiceProcess(name, proc, Path(path), port)
    try:
        wait_http(f"{sp.url}{ready_path}", proc, log=sp.log_path)
    except Exception:
        sp.stop()
        raise
    return sp


@contextlib.contextmanager
def running(name: str, args: list[str], env: dict[str, str]) -> Iterator[ServiceProcess]:
    sp = start_service(name, args, env)
    try:
        yield sp
    finally:
        sp.stop()
