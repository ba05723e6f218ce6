"""E2E fixtures: the whole stack from `parley dev` (real processes) and headless Chromium."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from services.common.infra import free_port



@dataclass
class Stack:
    """A running `parley dev`: its URL and everything it printed."""

    url: str
    port: int
    proc: subprocess.Popen[str]
    data_dir: Path | None = None
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "".join(self.lines)

    def internal_url(self, service: str) -> str:
        """A service's own loopback URL (from the state dir's run.env), e.g. "metrics"."""
        from services.statedir import StateDir

        assert self.data_dir is not None
        run = StateDir(self.data_dir).read(self.data_dir / "run.env")
        return run[f"PARLEY_{service.upper().replace('-', '_')}_INTERNAL_URL"]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)


def start_stack(*, signaling_replicas: int = 1, relay: bool = True, force_relay: bool = False,
                env: dict[str, str] | None = None, extra: list[str] | None = None,
                command: str = "dev", url: str | None = None) -> Stack:
    """Start `parley dev` (or `serve`) on a free port, with a state dir of its own, and wait
    for its "running" line."""
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="parley-e2e-state-"))
    argv = [sys.executable, "-m", "services", command, "--port", str(port),
            "--data-dir", str(data_dir)]
    if command == "dev":
        argv += ["--signaling-replicas", str(signaling_replicas),
                 "--relay" if relay else "--no-relay"]
    if force_relay:
        argv.append("--force-relay")
    argv += extra or []
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    stack = Stack(url or f"http://localhost:{port}", port, proc, data_dir)
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            stack.lines.append(line)
            if "Parley is running at" in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 90
    while not ready.is_set():
        if proc.poll() is not None or time.monotonic() > deadline:
            stack.stop()
            raise RuntimeError(f"parley dev did not start:\n{stack.output()[-4000:]}")
        time.sleep(0.1)
    return stack


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The whole local stack: rooms, one signalling replica, a relay."""
    s = start_stack()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def stack_two_replicas() -> Iterator[Stack]:
    """The stack with two signalling replicas (rooms hands them out round-robin)."""
    s = start_stack(signaling_replicas=2)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def stack_relay_forced() -> Iterator[Stack]:
    """The stack with relay forced for everyone (iceTransportPolicy "relay")."""
    s = start_stack(force_relay=True)
    yield s
    s.stop()


_SHOTS_USED: list[Path] = []


@pytest.fixture(scope="session")
def shots() -> Path:
    """The screenshot folder (tests/e2e/shots.py); the run's summary says where it is."""
    from tests.e2e.shots import folder

    path = folder()
    _SHOTS_USED.append(path)
    return path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print where this run's screenshots are (to look at, not for pixel diffs)."""
    for path in _SHOTS_USED[:1]:
        terminalreporter.write_line(f"[parley e2e] screenshots: {path}")


@pytest.fixture(scope="session")
def axe_file() -> Path:
    """axe-core's axe.min.js (tests/e2e/axe.py), fetched from the npm registry if missing.

    Skips without npm or registry, except in CI (`CI=true`), where that is a failure.
    """
    from tests.e2e.axe import AxeUnavailable, ensure_axe

    try:
        return ensure_axe()
    except AxeUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"axe-core unavailable: {exc}")
        pytest.skip(f"axe-core unavailable: {exc}")
