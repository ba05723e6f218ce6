"""The relay bench's paced C load generator (bench/relay/blaster.c) works: a short, slow
run through a real `parley relay` with worker ports, every packet relayed once. A smoke
test of the tool, not a speed figure (those are in bench/relay/README.md)."""

from __future__ import annotations

import shutil

import pytest

from bench.relay import run as relay_bench

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc missing")


def test_blaster_paces_and_counts_through_parley_worker_ports() -> None:
    result = relay_bench.run_one("parley-wp", 2, None, shape="blaster", size=160, rate=2000,
                                 seconds=1, loaders=2)
    assert isinstance(result, relay_bench.Blast)
    assert result.sent >= 1800, result  # 2 000/s for 1 s, in 1 ms ticks
    assert result.relayed >= 0.98 * result.sent, result  # loopback, 2 000 packets/s
    assert 0.9 <= result.seconds <= 3.0, result


def test_blaster_bursts_through_parley_with_gso() -> None:
    """`--burst 8` (the uniform flood of the UDP GSO figures) through `parley-gso`: the
    generator keeps its rate in bursts and every packet is relayed once."""
    result = relay_bench.run_one("parley-gso", 1, None, shape="blaster", size=160, rate=2000,
                                 seconds=1, loaders=1, burst=8)
    assert isinstance(result, relay_bench.Blast)
    assert result.sent >= 1800 and result.sent % 8 == 0, result
    assert result.relayed >= 0.98 * result.sent, result
