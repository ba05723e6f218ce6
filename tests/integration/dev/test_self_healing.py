"""`parley dev` heals itself: a killed child (signalling, relay, NATS, Redis) comes back, and
a killed `parley dev` leaves no process and no folder behind.

Real processes throughout; every wait polls with a generous deadline (no timing asserted).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.integration.dev.test_dev_stack import _alive, _children
from tests.stack import Stack, start_stack

DEADLINE = 90.0  # generous: 2 cores shared with other test runs


def _poll(what: str, check: Callable[[], bool], run: Stack | None = None) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    tail = run.output()[-3000:] if run else ""
    raise AssertionError(f"{what}: not within {DEADLINE:.0f}s\n{tail}")


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


def _get(url: str) -> tuple[int, Any]:
    """Status and body (JSON when it is; the relay answers `ready`); 0 when it fails."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            body = r.read()
            status = int(r.status)
    except Exception:
        return 0, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


def _all_ready(run: Stack) -> bool:
    """Every service's own /readyz, and the gateway's (rooms behind it), answer 200."""
    urls = [v for k, v in run.run_env().items() if k.endswith("_INTERNAL_URL")]
    assert len(urls) >= 5  # rooms, signalling x2, relay, logpurge, metrics
    return all(_get(f"{u}/readyz")[0] == 200 for u in [*urls, f"http://127.0.0.1:{run.port}"])


def _join(port: int, room: str) -> dict[str, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/rooms/{room}/join",
                                     data=b"{}", method="POST",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.status == 200
        answer: dict[str, Any] = json.load(r)
    return answer


async def _signal_in(port: int, room: str, token: str) -> dict[str, Any]:
    """Join `room` over the gateway's /ws; the server's first message."""
    async with connect(f"ws://127.0.0.1:{port}/ws",
                       additional_headers={"Origin": f"http://127.0.0.1:{port}"}) as ws:
        await ws.send(json.dumps({"type": "join", "token": token, "room": room}))
        first: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return first


def _new_join_works(run: Stack) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new room's join through the gateway and its websocket welcome (polled: the
    services reconnect to a restarted NATS or Redis by themselves, in their own time)."""
    result: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def attempt() -> bool:
        room = f"heal-{secrets.token_hex(4)}"
        try:
            joined = _join(run.port, room)
            first = asyncio.run(_signal_in(run.port, room, joined["token"]))
        except Exception:
            return False
        result.append((joined, first))
        return first.get("type") == "welcome"

    _poll("a new join through the gateway", attempt, run)
    return result[-1]


@pytest.fixture(scope="module")
def healing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run = start_stack(data_dir=tmp_path_factory.mktemp("heal") / "state", signaling_replicas=2)
    yield run
    assert run.stop() == 0


def _pid_of(run: Stack, child: str) -> int:
    """The pid of one of the stack's children, by what its command line holds."""
    env = run.run_env()
    marks = {"nats": "nats-server", "redis": "redis-server", "relay": "services relay"}
    if child.startswith("signaling-"):
        port = env[f"PARLEY_{child.upper().replace('-', '_')}_INTERNAL_URL"].rsplit(":", 1)[1]
        mark = f"services signaling --host 127.0.0.1 --port {port}"
    else:
        mark = marks[child]
    found = [k for k in _children(run.proc.pid)
             if mark in _cmdline(k) and _alive(k) and _parent(k) == run.proc.pid]
    assert len(found) == 1, (child, found)
    return found[0]


@pytest.mark.parametrize("child", ["signaling-1", "relay", "nats", "redis"])
def test_parley_dev_killed_child_comes_back(healing: Stack, child: str) -> None:
    run = healing
    _poll("the stack ready before the kill", lambda: _all_ready(run), run)
    before = _pid_of(run, child)
    os.kill(before, signal.SIGKILL)
    line = f"parley dev: {child} exited with code -9; restarting in 0.5 s (restart 1)"
    _poll(f"the restart line of {child}", lambda: line in run.output(), run)

    def back() -> bool:
        try:
            return _pid_of(run, child) != before
        except AssertionError:
            return False

    _poll(f"{child} running again", back, run)
    _poll("every /readyz answering again", lambda: _all_ready(run), run)
    joined, first = _new_join_works(run)
    assert first["type"] == "welcome"
    if child == "relay":  # rooms hands the restarted relay out again
        _poll("rooms hearing the relay",
              lambda: _get(f"http://127.0.0.1:{run.port}/readyz")[1]["relays"] == 1, run)
        joined, _ = _new_join_works(run)
        assert any(str(u).startswith("turn:") for s in joined["ice_servers"]
                   for u in (s["urls"] if isinstance(s["urls"], list) else [s["urls"]]))
    assert run.proc.poll() is None
    assert "stopping" not in run.output()


def test_parley_dev_sigkill_leaves_no_process_and_no_folder(tmp_path: Path) -> None:
    state = tmp_path / "state"
    run = start_stack(data_dir=state)
    try:
        kids = _children(run.proc.pid)
        env = run.run_env()
        ports = [u.rsplit(":", 1)[1] for k, u in env.items() if k.endswith("_INTERNAL_URL")]
        nats_port = env["PARLEY_NATS_URL"].rsplit(":", 1)[1]
        # NATS's and Redis's folders are in the state dir, not in /tmp
        users = next(ln for ln in run.lines if "their users of this run:" in ln).split(": ")[1]
        assert Path(users.strip()).parent == state.resolve() / "run" / str(run.proc.pid) / "nats"
        assert any("nats-server" in _cmdline(k) for k in kids)
        assert any("redis-server" in _cmdline(k) for k in kids)
        assert len(kids) >= 8  # nats, redis, rooms, signalling, relay, logpurge, metrics, gateway
    finally:
        run.proc.kill()
        run.proc.wait(10)

    marks = {*ports, nats_port, str(run.port)}

    def ours(pid: int) -> bool:
        """A process of that stack: its state dir or one of its ports on the command line."""
        cmd = _cmdline(pid)
        words = {w.rsplit(":", 1)[-1] for w in cmd.split()}
        return _alive(pid) and (str(state.resolve()) in cmd or bool(words & marks))

    _poll("every child gone", lambda: not [k for k in kids if _alive(k)])
    left = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if ours(pid)]
    assert left == []
    # the next start removes the killed run's folder; its own goes at Ctrl-C
    again = start_stack(data_dir=state, relay=False, signaling_replicas=0)
    runs = sorted(p.name for p in (state / "run").iterdir())
    assert again.stop() == 0
    assert runs == [str(again.proc.pid)]
    assert list((state / "run").iterdir()) == []
