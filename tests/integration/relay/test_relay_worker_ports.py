"""Worker ports, end to end: `parley relay --workers 2 --worker-port-base P`.

Worker k listens alone on P+k. Two clients of one worker port meet in process (the
relay's /metrics counts the packets as delivered in process), on the compiled and the
pure-Python path; a client of the other worker port still gets its data through the kernel;
a client of the shared port that the kernel put in the same worker meets a worker-port
client in process too, each answered from the port it used; aioice reaches an outside peer
over UDP and TCP through a worker port. Rooms, fed by the real relay's
heartbeats over NATS, gives two joins of one room the same worker port, and an allocation
on it lands in that worker.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from relay_it_support import ROOT, RawClient, RelayProcess, free_port_pair, relay_port_range
from test_relay_aioice import _round_trip
from test_relay_modes import _local_delivered, _published, _talk, _worker_of, mode_params

from services.common.infra import reserve_port
from services.relay.stun import Attr
from tests.procs import ServiceProcess

WORKERS = 2


class SourceCheckingClient(RawClient):
    """A RawClient that also records every address it heard from."""

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.heard: set[tuple[str, int]] = getattr(self, "heard", set())
        self.heard.add((addr[0], addr[1]))
        super().datagram_received(data, addr)


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def worker_port_base(ports: str) -> int:
    """A base port P with P..P+WORKERS-1 free (UDP and TCP), outside the relayed `ports`."""
    low, high = (int(p) for p in ports.split("-"))
    for _ in range(100):
        base = free_port_pair()
        last = base + WORKERS - 1
        if (last < low or base > high) and last <= 65535 and all(
            _bindable(p) for p in range(base + 1, last + 1)
        ):
            reserve_port(*range(base + 1, last + 1))
            return base
    raise AssertionError("no run of free ports")


def start(relay_factory: Callable[..., RelayProcess], *extra: str, **kw: Any) -> tuple[
        RelayProcess, int]:  # fmt: skip
    ports = relay_port_range()
    base = worker_port_base(ports)
    relay = relay_factory("--worker-port-base", str(base), *extra, workers=WORKERS,
                          ports=ports, **kw)  # fmt: skip
    return relay, base


async def allocated(server: tuple[str, int]) -> tuple[SourceCheckingClient, tuple[str, int]]:
    client = await SourceCheckingClient.open(server)
    reply = await client.allocate()
    return client, reply.get(Attr.XOR_RELAYED_ADDRESS)


@pytest.mark.parametrize("env", mode_params("compiled", "python"))
async def test_worker_ports_in_process_on_one_port_kernel_across(
    relay_factory: Callable[..., RelayProcess], echo_peer: tuple[str, int], env: dict[str, str]
) -> None:
    relay, base = start(relay_factory, "--allow-peer", "127.0.0.1/32", env=env)
    port0, port1 = ("127.0.0.1", base), ("127.0.0.1", base + 1)
    clients: list[SourceCheckingClient] = []
    try:
        (a, a_relayed), (b, b_relayed), (c, c_relayed) = [
            await allocated(server) for server in (port0, port0, port1)
        ]
        clients += [a, b, c]
        # the worker port decides the worker (workers' relayed port slices are disjoint)
        assert [_worker_of(r[1], relay.ports, WORKERS) for r in (a_relayed, b_relayed,
                                                                  c_relayed)] == [0, 0, 1]
        await _talk(a, a_relayed, b, b_relayed, 0x4001)  # one worker: in process
        await _talk(b, b_relayed, c, c_relayed, 0x4002)  # two workers: through the kernel
        await _published(relay, 3)
        assert _local_delivered(relay) == 3
        # a shared-port client the kernel put in worker 0 meets A there, in process too
        x = x_relayed = None
        for _ in range(24):
            candidate, relayed = await allocated(relay.address)
            clients.append(candidate)
            if _worker_of(relayed[1], relay.ports, WORKERS) == 0:
                x, x_relayed = candidate, relayed
                break
        assert x is not None and x_relayed is not None
        await _talk(x, x_relayed, a, a_relayed, 0x4003)
        await _published(relay, 6)
        assert _local_delivered(relay) == 6
        # every client heard only the port it talks to
        for client in (a, b, c, x):
            assert client.heard == {client.server}
        # aioice to an outside peer, over UDP and TCP on a worker port
        await _round_trip(port1, echo_peer, "udp")
        await _round_trip(port1, echo_peer, "tcp")
    finally:
        for client in clients:
            client.close()


def test_worker_port_base_errors_are_one_line() -> None:
    ports = relay_port_range()
    low = int(ports.split("-")[0])
    argv = [sys.executable, "-m", "services.relay", "--listen", f"127.0.0.1:{free_port_pair()}",
            "--relay-ip", "127.0.0.1", "--ports", ports, "--secret", "s", "--workers", "2",
            "--http-port", "0"]  # fmt: skip
    bad = subprocess.run([*argv, "--worker-port-base", str(low)], cwd=ROOT,
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"error: --worker-port-base ports {low}-{low + 1} overlap the relayed ports {ports}"]
    base = worker_port_base(ports)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", base + 1))
        taken = subprocess.run([*argv, "--worker-port-base", str(base)], cwd=ROOT,
                               capture_output=True, text=True, timeout=30)  # fmt: skip
    assert taken.returncode == 1
    lines = taken.stderr.strip().splitlines()
    assert lines[-1] == (f"error: cannot listen on worker UDP 127.0.0.1:{base + 1}: "
                         "address already in use"), taken.stderr  # fmt: skip
    assert "Traceback" not in taken.stderr


async def _turn_port(rooms: ServiceProcess, room: str) -> tuple[list[str], int]:
    async with httpx.AsyncClient(base_url=rooms.url, timeout=10,
                                 headers={"content-type": "application/json"}) as c:
        body = (await c.post(f"/api/rooms/{room}/join")).json()
    urls = [u for s in body["ice_servers"] if "username" in s for u in s["urls"]
            if u.startswith("turn:")]  # fmt: skip
    return urls, int(urls[0].split("?")[0].rsplit(":", 1)[1]) if urls else 0


async def test_rooms_gives_one_room_one_worker_port(
    relay_factory: Callable[..., RelayProcess], rooms_proc: ServiceProcess,
    parley_env: dict[str, str],
) -> None:
    # id "0…" wins ties among idle relays other tests may have announced
    relay_id = f"0wp{uuid.uuid4().hex[:8]}"
    relay, base = start(relay_factory, "--relay-id", relay_id, "--heartbeat-interval", "0.3",
                        "--nats-url", parley_env["PARLEY_NATS_URL"])  # fmt: skip
    deadline = time.monotonic() + 10
    port = 0
    while port not in (base, base + 1) and time.monotonic() < deadline:
        _, port = await _turn_port(rooms_proc, f"probe-{uuid.uuid4().hex[:10]}")
        if port not in (base, base + 1):
            await asyncio.sleep(0.2)
    assert port in (base, base + 1), "rooms never handed out the relay's worker ports"
    room = f"wp-{uuid.uuid4().hex[:12]}"
    first, port = await _turn_port(rooms_proc, room)
    second, _ = await _turn_port(rooms_proc, room)
    assert first == second and len(first) == 2 and port in (base, base + 1)
    assert all(f":{port}?transport=" in u for u in first)
    client, relayed = await allocated(("127.0.0.1", port))
    try:
        assert _worker_of(relayed[1], relay.ports, WORKERS) == port - base
    finally:
        client.close()
