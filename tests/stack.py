"""`parley dev` (or `serve`) as a test runs it: a real process on a free port with a state
dir of its own, and everything it printed (the e2e fixtures and the dev-stack tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from services.common.infra import free_port
from services.statedir import StateDir


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

    def run_env(self) -> dict[str, str]:
        """The running stack's run.env (its NATS URL and each service's loopback URL)."""
        assert self.data_dir is not None
        return StateDir(self.data_dir).read(self.data_dir / "run.env")

    def internal_url(self, service: str) -> str:
        """A service's own loopback URL (from the state dir's run.env), e.g. "metrics"."""
        return self.run_env()[f"PARLEY_{service.upper().replace('-', '_')}_INTERNAL_URL"]

    def children(self) -> dict[str, dict[str, object]]:
        """The stack's children by name (`signaling-1`, `relay-2`, `nats` …): pid and, for a
        relay, its TURN port (`services.devstack.running_children`)."""
        from services.devstack import running_children

        return running_children(self.data_dir)

    def kill(self, child: str, *, hold: bool = False) -> int:
        """SIGKILL one child by name; `hold`: the stack does not restart it until
        `release(child)`. Returns the pid killed."""
        from services.devstack import hold_file

        if hold:
            path = hold_file(self.data_dir, child)
            path.parent.mkdir(exist_ok=True)
            path.touch()
        pid = int(str(self.children()[child]["pid"]))
        os.kill(pid, signal.SIGKILL)
        return pid

    def release(self, child: str) -> None:
        """Let the stack restart a child kept down by `kill(child, hold=True)`."""
        from services.devstack import hold_file

        hold_file(self.data_dir, child).unlink(missing_ok=True)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)


def start_stack(*, signaling_replicas: int = 1, relay: bool = True, relays: int = 1,
                force_relay: bool = False,
                env: dict[str, str] | None = None, extra: list[str] | None = None,
                command: str = "dev", url: str | None = None,
                data_dir: Path | None = None, sfus: int = 0) -> Stack:
    """Start `parley dev` (or `serve`) on a free port, with a state dir of its own (a fresh
    temp dir unless `data_dir` is given), and wait for its "running" line.

    `sfus`: SFU processes (`parley dev --sfus`); none by default, so that the tests of the
    mesh keep the mesh's room capacity (an SFU raises it to PARLEY_SFU_ROOM_CAPACITY).
    """
    port = free_port()
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="parley-e2e-state-"))
    argv = [sys.executable, "-m", "services", command, "--port", str(port),
            "--data-dir", str(data_dir)]
    if command == "dev":
        argv += ["--signaling-replicas", str(signaling_replicas),
                 "--relay" if relay else "--no-relay", "--sfus", str(sfus)]
        if relays != 1:
            argv += ["--relays", str(relays)]
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
