"""The relay's packet paths, end to end: compiled or pure Python, in-process delivery on or off.

The rest of the relay suite runs the default (compiled path when built, in-process delivery
on); here the interop checks that exercise the data path run in the other modes, cheaply:
coturn's uclient client to client, aioice through an echo peer, the garbage flood, and
two workers, where clients of one worker meet in process and clients of two go through
the kernel.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import socket
import time
from collections.abc import Callable

import pytest
from relay_it_support import RawClient, RelayProcess, error_code
from test_relay_aioice import _round_trip
from test_relay_coturn import uclient

from services.relay import fastpath
from services.relay.stun import Attr, Method
from services.relay.turn.channeldata import pack_channel_data
from services.relay.worker import worker_ports

PYTHON = {"PARLEY_RELAY_FASTPATH": "off"}
KERNEL = {"PARLEY_RELAY_LOCAL_DELIVERY": "false"}
MODES = {
    "python": PYTHON,
    "kernel": KERNEL,
    "python-kernel": {**PYTHON, **KERNEL},
    "compiled": {},
}
BUILT = fastpath.load() is not None
needs_coturn = pytest.mark.skipif(
    shutil.which("turnutils_uclient") is None, reason="coturn utils missing"
)


def mode_params(*names: str) -> list[object]:
    return [
        pytest.param(
            MODES[n], id=n,
            marks=pytest.mark.skipif(n == "compiled" and not BUILT, reason="not built"),
        )
        for n in names
    ]  # fmt: skip


@needs_coturn
@pytest.mark.coturn
@pytest.mark.parametrize("env", mode_params("python", "kernel", "python-kernel"))
def test_uclient_client_to_client_in_every_mode(
    relay_factory: Callable[..., RelayProcess], env: dict[str, str]
) -> None:
    relay = relay_factory("--rfc5766-channels", "--user-quota", "100", env=env)
    lost, dropped, out = uclient(relay, "-y", clients=4, messages=100)
    assert (lost, dropped) == (0, 0), out[-2000:]


@pytest.mark.parametrize("env", mode_params("python", "kernel"))
async def test_aioice_and_garbage_in_other_modes(
    relay_factory: Callable[..., RelayProcess], echo_peer: tuple[str, int], env: dict[str, str]
) -> None:
    relay = relay_factory("--allow-peer", "127.0.0.1/32", env=env)
    rng = random.Random(7)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(2000):
            data = rng.randbytes(rng.randrange(0, 120))
            if i % 3 == 0:  # ChannelData-shaped garbage: first byte 0x40-0x7F
                data = bytes([0x40 + rng.randrange(64)]) + data
            sock.sendto(data, relay.address)
    await _round_trip(relay.address, echo_peer, "udp")
    await _round_trip(relay.address, echo_peer, "tcp")
    assert relay.proc.poll() is None


def _worker_of(port: int, ports: str, workers: int) -> int:
    low, high = (int(p) for p in ports.split("-"))
    for index in range(workers):
        first, last = worker_ports(low, high, index, workers)
        if first <= port <= last:
            return index
    raise AssertionError(port)


async def _talk(a: RawClient, a_relayed: tuple[str, int], b: RawClient,
                b_relayed: tuple[str, int], number: int) -> bytes:  # fmt: skip
    """A binds a channel to B's relayed address, B one back; A sends; what B gets."""
    reply = await a.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: number}, peers=[b_relayed])
    assert error_code(reply) is None
    reply = await b.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: number}, peers=[a_relayed])
    assert error_code(reply) is None
    payload = f"hello {number:x}".encode()
    for _ in range(3):  # the first packet teaches the compiled path its route
        a.transport.sendto(pack_channel_data(number, payload), a.server)
        got = await asyncio.wait_for(b.data.get(), 3)
        assert got == pack_channel_data(number, payload)
    return payload


def _local_delivered(relay: RelayProcess) -> float:
    status, text = relay.http("/metrics")
    assert status == 200
    match = re.search(r"^parley_relay_local_delivered_total (\S+)$", text, re.M)
    assert match, text[-500:]
    return float(match.group(1))


async def _published(relay: RelayProcess, want: float, within: float = 5.0) -> None:
    """Poll /metrics (workers publish their counters every 0.5 s) until it shows `want`."""
    deadline = time.monotonic() + within
    while _local_delivered(relay) < want and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("env", mode_params("compiled", "python"))
async def test_two_workers_in_process_and_across(
    relay_factory: Callable[..., RelayProcess], env: dict[str, str]
) -> None:
    relay = relay_factory(workers=2, env=env)
    clients: list[tuple[RawClient, tuple[str, int], int]] = []
    same = across = None
    try:
        for _ in range(16):  # SO_REUSEPORT spreads clients by 4-tuple: find both kinds
            client = await RawClient.open(relay.address)
            reply = await client.allocate()
            relayed = reply.get(Attr.XOR_RELAYED_ADDRESS)
            worker = _worker_of(relayed[1], relay.ports, 2)
            for other in clients:
                if other[2] == worker and same is None:
                    same = (other, (client, relayed, worker))
                elif other[2] != worker and across is None:
                    across = (other, (client, relayed, worker))
            clients.append((client, relayed, worker))
            if same and across:
                break
        assert same is not None and across is not None
        await _talk(same[0][0], same[0][1], same[1][0], same[1][1], 0x4001)
        await _talk(across[0][0], across[0][1], across[1][0], across[1][1], 0x4002)
        want = 0 if env is MODES["kernel"] else 3
        await _published(relay, want)
        assert _local_delivered(relay) == want
    finally:
        for client, _, _ in clients:
            client.close()
