"""`parley relay probe`: an aiortc call through the relay with relay-only ICE."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from relay_it_support import ROOT, SECRET, RelayProcess

from services.relay.probe import ProbeError, probe


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_probe_through_relay(
    relay_factory: Callable[..., RelayProcess], transport: str
) -> None:
    # no --allow-peer: the two peers meet on the relay's own relayed addresses
    relay = relay_factory()
    result = await probe("127.0.0.1", relay.port, secret=SECRET, transport=transport, timeout=20)
    assert result.setup_ms > 0 and result.rtt_ms > 0
    assert result.candidate == f"relay/{transport}"


async def test_probe_wrong_secret_fails(relay_factory: Callable[..., RelayProcess]) -> None:
    relay = relay_factory()
    with pytest.raises(ProbeError, match="no relayed candidate"):
        await probe("127.0.0.1", relay.port, secret="wrong", timeout=10)


def test_probe_cli_exit_codes(relay_factory: Callable[..., RelayProcess]) -> None:
    relay = relay_factory()
    ok = subprocess.run(
        [sys.executable, "-m", "services.relay", "probe", f"127.0.0.1:{relay.port}",
         "--secret", SECRET],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("ok: setup ") and " ms, rtt " in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "services.relay", "probe", f"127.0.0.1:{relay.port}",
         "--secret", "x", "--timeout", "5"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 1 and bad.stderr.startswith("error: ")
