"""Interop with coturn's own client, `turnutils_uclient`, with TURN REST auth (-W).

Channel mode, Send-indication mode (-s), TCP (-t) and client-to-client (-y), at a
moderate load, with zero loss. Skipped when coturn's utilities are not installed.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator

import pytest
from relay_it_support import SECRET, RelayProcess

pytestmark = [
    pytest.mark.coturn,
    pytest.mark.skipif(shutil.which("turnutils_uclient") is None, reason="coturn utils missing"),
]
LOSS = re.compile(r"Total lost packets (\d+) \(([\d.]+)%\), total send dropped (\d+)")


@pytest.fixture
def coturn_peer() -> Iterator[int]:
    """coturn's UDP echo peer on a free loopback port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        ["turnutils_peer", "-L", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    yield port
    proc.terminate()
    proc.wait(5)


def uclient(relay: RelayProcess, *flags: str, peer_port: int = 0, clients: int = 8,
            messages: int = 150) -> tuple[int, int, str]:  # fmt: skip
    """Run turnutils_uclient; return (lost, send dropped, output)."""
    args = [
        "turnutils_uclient", *flags, "-c", "-W", SECRET, "-u", "itest",
        "-p", str(relay.port), "-m", str(clients), "-n", str(messages), "-l", "160", "-z", "5",
    ]  # fmt: skip
    if peer_port:
        args += ["-e", "127.0.0.1", "-r", str(peer_port)]
    result = subprocess.run([*args, "127.0.0.1"], capture_output=True, text=True, timeout=60)
    out = result.stdout + result.stderr
    match = LOSS.search(out)
    assert match, out[-2000:]
    return int(match.group(1)), int(match.group(3)), out


@pytest.fixture
def coturn_relay(relay_factory: Callable[..., RelayProcess]) -> RelayProcess:
    return relay_factory(
        "--allow-peer", "127.0.0.1/32", "--rfc5766-channels", "--user-quota", "100"
    )


@pytest.mark.parametrize("flags", [(), ("-s",), ("-t",)], ids=["channel", "send", "tcp"])
def test_uclient_through_peer_zero_loss(
    coturn_relay: RelayProcess, coturn_peer: int, flags: tuple[str, ...]
) -> None:
    lost, dropped, out = uclient(coturn_relay, *flags, peer_port=coturn_peer)
    assert (lost, dropped) == (0, 0), out[-2000:]


@pytest.mark.parametrize("flags", [("-y",), ("-y", "-t")], ids=["udp", "tcp"])
def test_uclient_client_to_client_zero_loss(relay_factory: Callable[..., RelayProcess],
                                            flags: tuple[str, ...]) -> None:  # fmt: skip
    # no --allow-peer: the clients reach each other's relayed addresses on the relay's own IP
    relay = relay_factory("--rfc5766-channels", "--user-quota", "100")
    lost, dropped, out = uclient(relay, *flags)
    assert (lost, dropped) == (0, 0), out[-2000:]


def test_uclient_wrong_secret_refused(coturn_relay: RelayProcess, coturn_peer: int) -> None:
    args = ["turnutils_uclient", "-c", "-W", "wrong", "-p", str(coturn_relay.port),
            "-e", "127.0.0.1", "-r", str(coturn_peer), "-n", "5", "127.0.0.1"]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "Cannot complete Allocation" in result.stdout + result.stderr
