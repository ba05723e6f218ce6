"""The dev stack's children, found by their command lines, and the faults done to them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.stack import Stack
import contextlib


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def children(stack: Stack) -> dict[int, str]:
    """The stack's live child processes: pid -> command line."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _parent(int(entry)) == stack.proc.pid and _alive(int(entry)):
            out[int(entry)] = _cmdline(int(entry))
    return out


def pid_of(stack: Stack, child: str) -> int | None:
    """The pid of "nats", "redis", "rooms", "signaling-N", or "relay:<TURN port>"."""
    env = stack.run_env()
    if child.startswith("signaling-"):
        port = env[f"PARLEY_{child.upper().replace('-', '_')}_INTERNAL_URL"].rsplit(":", 1)[1]
        mark = f"services signaling --host 127.0.0.1 --port {port}"
    elif child.startswith("relay:"):
        mark = f":{child.split(':', 1)[1]} "  # --listen <host>:<port>
    else:
        mark = {"nats": "nats-server", "redis": "redis-server",
                "rooms": "services rooms"}[child]
    found = [pid for pid, cmd in children(stack).items()
             if mark in cmd + " " and (not child.startswith("relay:") or "services relay" in cmd)]
    return found[0] if len(found) == 1 else None


def kill(stack: Stack, child: str) -> int:
    """SIGKILL a child (the stack starts it again after its backoff); its old pid."""
    pid = pid_of(stack, child)
    if pid is None:
        raise RuntimeError(f"no single {child} child in the stack")
    os.kill(pid, signal.SIGKILL)
    return pid


def freeze_then_kill(stack: Stack, child: str, seconds: float) -> int:
    """SIGSTOP a child for `seconds`, then SIGKILL it (the stack starts it again).

    Returns its pid at once; a thread kills it later.
    """
    pid = pid_of(stack, child)
    if pid is None:
        raise RuntimeError(f"no single {child} child in the stack")
    os.kill(pid, signal.SIGSTOP)

    def later() -> None:
        time.sleep(seconds)
        kill_quietly(pid)

    threading.Thread(target=later, daemon=True).start()
    return pid


def kill_quietly(pid: int) -> None:
    """SIGKILL (a stopped process dies of it too), ignoring one already gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def back(stack: Stack, child: str, old: int) -> bool:
    """Whether `child` runs again under a new pid."""
    pid = pid_of(stack, child)
    return pid is not None and pid != old


def dev_supports(flag: str) -> bool:
    """Whether this `parley dev` has an option (e.g. `--relays`, added by issue 10 item 1)."""
    out = subprocess.run([sys.executable, "-m", "services", "dev", "--help"],
                         capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"},
                         timeout=60, check=False)
    return flag in out.stdout
