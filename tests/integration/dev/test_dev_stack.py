"""`parley dev` starts the whole stack as processes and Ctrl-C leaves nothing running;
with `--exit-on-crash` a dying child stops it (tests/integration/dev/test_self_healing.py:
without, the child is restarted)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from services.common.infra import free_port


def _children(pid: int) -> set[int]:
    """All descendants and session members started by `pid` (by PPID walk of /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        nxt = {c for c, p in parents.items() if p in frontier} - found
        found |= nxt
        frontier = nxt
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False


def _start(port: int, *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "services", "dev", "--port", str(port), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"parley dev exited: {proc.wait()}")
        if "Parley is running at" in line:
            assert f"http://localhost:{port}" in line
            return proc
    proc.kill()
    raise AssertionError("parley dev did not start in time")


def test_parley_dev_starts_and_ctrl_c_stops_everything() -> None:
    port = free_port()
    proc = _start(port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            assert json.load(r)["ready"] is True
        kids = _children(proc.pid)
        assert len(kids) >= 3  # nats, redis, rooms (+ signalling, relay when built)
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(30)
    assert rc == 0
    time.sleep(0.5)
    assert not [k for k in kids if _alive(k)], "processes left behind"


def test_parley_dev_exit_on_crash_reports_a_crashed_child_by_name() -> None:
    port = free_port()
    proc = _start(port, "--exit-on-crash")
    kids = _children(proc.pid)
    rooms = [k for k in kids if "rooms" in Path(f"/proc/{k}/cmdline").read_bytes().decode()]
    assert rooms
    os.kill(rooms[0], signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "rooms exited with code" in out
    time.sleep(0.5)
    assert not [k for k in kids if _alive(k)]


def test_parley_dev_port_in_use_is_a_clear_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "services", "dev", "--port", str(port)],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert f"port {port} is in use" in r.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["dev", "--port", "0"], "--port"), (["rooms", "--bogus"], "--bogus"),
     (["nosuch"], "nosuch")],
)
def test_cli_bad_flags_say_what_is_wrong(argv: list[str], message: str) -> None:
    r = subprocess.run([sys.executable, "-m", "services", *argv], capture_output=True, text=True,
                       timeout=60, check=False, env={**os.environ, "COLUMNS": "250"})
    assert r.returncode == 2
    assert message in r.stderr


def test_rooms_without_secrets_is_a_one_line_error() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    r = subprocess.run([sys.executable, "-m", "services", "rooms"], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 2
    assert r.stderr.strip() == "parley: PARLEY_TOKEN_KEY is not set"


def test_service_with_an_invalid_setting_names_it() -> None:
    env = {**os.environ, "PARLEY_ROOM_CAPACITY": "many", "PARLEY_TOKEN_KEY": "k",
           "PARLEY_HASH_KEY": "h"}
    r = subprocess.run([sys.executable, "-m", "services", "rooms"], capture_output=True,
                       text=True, timeout=60, env=env, check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("parley: PARLEY_ROOM_CAPACITY: Input should be a valid integer")
