"""Embedded NATS/Redis start on free ports, answer, and leave nothing behind."""

from __future__ import annotations

import socket
from collections import deque
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest
import redis.asyncio as aioredis

from services.common import infra
from services.common.infra import NatsServer, RedisServer, find_binary


async def test_embedded_servers_answer_and_stop() -> None:
    n, r = NatsServer().start(), RedisServer().start()
    try:
        assert n.port not in (4222,) and r.port not in (6379,)
        nc = await nats.connect(n.url)
        info = await nc.jetstream().account_info()
        assert info is not None  # JetStream is on
        await nc.close()
        client = aioredis.from_url(r.url)
        assert await client.ping()
        await client.aclose()
    finally:
        n.stop()
        r.stop()
    assert n.proc is not None and n.proc.poll() is not None
    assert r.proc is not None and r.proc.poll() is not None
    assert not n.workdir.exists() and not r.workdir.exists()


def test_find_binary_locates_both() -> None:
    assert find_binary("nats-server")
    assert find_binary("redis-server")


def test_embedded_servers_die_with_a_killed_parent(tmp_path: Path) -> None:
    """A test run or bench SIGKILLed (a timeout, Ctrl-\\) leaves no NATS or Redis behind:
    servers get SIGTERM from the kernel when the process that started them dies."""
    script = ("import sys, time\n"
              "from services.common.infra import NatsServer, RedisServer\n"
              "n, r = NatsServer().start(), RedisServer().start()\n"
              "print(n.proc.pid, r.proc.pid, flush=True)\n"
              "time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              cwd=Path(__file__).resolve().parents[3])
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids), "a server outlived its killed parent"


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, reaped by init soon, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_free_port_never_hands_out_a_port_twice_nor_a_reserved_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Callers pick several ports before any server binds one (`parley dev` plans all its
    children first): the same port twice made a child exit at startup in CI."""
    def bindable(low: int) -> bool:
        return all(infra._bindable("0.0.0.0", p, socket.SOCK_STREAM)
                   for p in range(low, low + 10))

    low = next(b for b in range(24000, 32000, 10) if bindable(b))
    monkeypatch.setattr(infra, "PORT_FLOOR", low)
    monkeypatch.setattr(infra, "_ephemeral_floor", lambda: low + 10)
    monkeypatch.setattr(infra, "_RECENT", deque(maxlen=1024))  # this run's earlier ports
    infra.reserve_port(low + 3)
    seen = [infra.free_port() for _ in range(9)]
    assert sorted(seen) == [p for p in range(low, low + 10) if p != low + 3]
    with pytest.raises(infra.InfraError):
        infra.free_port()
