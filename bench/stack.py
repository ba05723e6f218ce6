"""The dev stack as the load and soak benches run it: `python -m services dev` on a free port.

A real `parley dev` (NATS, Redis, rooms, signalling, relay, metrics, logpurge behind the
gateway) with a state dir of its own, its output (every child's too: they inherit it) in a
log file, the per-address rate limits raised through their settings (the whole load comes
from 127.0.0.1), and the list of its processes by name for `bench.procs`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from services.common.infra import free_port

START_TIMEOUT: Final[float] = 90.0
RUNNING: Final[str] = "Parley is running at"
#: The per-client-address limits, raised (not removed) for a bench whose every client is
#: 127.0.0.1: rooms' joins (PARLEY_JOIN_RATE/BURST, default 2/s, 20) and signalling's new
#: sockets (PARLEY_CONNECT_RATE/BURST, default 5/s, 60).
BENCH_LIMITS: Final[dict[str, str]] = {
    "PARLEY_JOIN_RATE": "100000", "PARLEY_JOIN_BURST": "100000",
    "PARLEY_CONNECT_RATE": "100000", "PARLEY_CONNECT_BURST": "100000",
}
_SERVICE_ARG: Final[re.Pattern[str]] = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass
class BenchStack:
    """A running `parley dev`: its URL, process, state dir and log file."""

    url: str
    port: int
    proc: subprocess.Popen[bytes]
    data_dir: Path
    log_path: Path

    @property
    def ws_base(self) -> str:
        return "ws" + self.url[len("http"):]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def processes(self) -> dict[str, int]:
        """Every process of the stack by name (`parley-dev`, `rooms`, `signaling`,
        `nats-server`, ...) to its pid; a name seen twice gets `#2`."""
        out: dict[str, int] = {"parley-dev": self.proc.pid}
        names = {self.proc.pid: "parley-dev"}
        for pid, ppid in _descendants(self.proc.pid):
            name = process_name(_cmdline(pid))
            if not name:
                continue
            if names.get(ppid, "").split("#")[0] == name:  # a forked worker (the relay's)
                name += "-worker"
            names[pid] = name
            key, n = name, 1
            while key in out:
                n += 1
                key = f"{name}#{n}"
            out[key] = pid
            names[pid] = key
        return out

    def infra_logs(self) -> dict[str, str]:
        """NATS's and Redis's own logs (in the stack's run folder, removed at stop)."""
        run = self.data_dir / "run" / str(self.proc.pid)
        logs: dict[str, str] = {}
        for path in sorted(run.rglob("*.log")) if run.is_dir() else []:
            logs[path.stem] = path.read_text(errors="replace")
        return logs

    def stop(self) -> int:
        """Ctrl-C, as a person stops it; SIGKILL after 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return int(self.proc.returncode)

    def cleanup(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)


def start(*, env: dict[str, str] | None = None, signaling_replicas: int = 1,
          log_path: Path | None = None) -> BenchStack:
    """Start `parley dev` with `BENCH_LIMITS` (and `env`), wait for its "running" line.

    Raises:
        RuntimeError: it exited or did not say it runs within `START_TIMEOUT`, with its
            output's tail.
    """
    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="parley-bench-state-"))
    log_path = log_path or data_dir / "stack.log"
    argv = [sys.executable, "-m", "services", "dev", "--port", str(port),
            "--data-dir", str(data_dir), "--signaling-replicas", str(signaling_replicas),
            "--relay"]
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **BENCH_LIMITS, **(env or {})}
    with open(log_path, "wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=child_env)
    stack = BenchStack(f"http://127.0.0.1:{port}", port, proc, data_dir, log_path)
    deadline = time.monotonic() + START_TIMEOUT
    while RUNNING not in stack.log_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            stack.stop()
            raise RuntimeError(f"parley dev did not start:\n{stack.log_text()[-4000:]}")
        time.sleep(0.1)
    return stack


def process_name(argv: list[str]) -> str:
    """A stack process's name from its command line: the service of `python -m services
    <service>`, else the program's file name (`nats-server`, `redis-server`)."""
    if not argv:
        return ""
    for i, arg in enumerate(argv[:-2]):
        if arg == "-m" and argv[i + 1] == "services" and _SERVICE_ARG.match(argv[i + 2]):
            return argv[i + 2]
    if "-m" in argv[:-1] and argv[argv.index("-m") + 1].startswith("services."):
        return argv[argv.index("-m") + 1].split(".")[1]
    if "multiprocessing" in " ".join(argv):
        return "worker"
    # redis-server sets its title to "redis-server 127.0.0.1:port": the program only
    return os.path.basename(argv[0].split()[0])


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _descendants(root: int) -> list[tuple[int, int]]:
    """Every living descendant of `root` with its parent, parents first (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out: list[tuple[int, int]] = []
    todo = [(pid, root) for pid in sorted(children.get(root, []))]
    while todo:
        pid, ppid = todo.pop(0)
        out.append((pid, ppid))
        todo.extend((c, pid) for c in sorted(children.get(pid, [])))
    return out
