"""Each bench runs for a few seconds against one real dev stack, so that they do not rot.

`bench.load` with one tiny step per phase, then `bench.soak` with two signalling rooms and
one aiortc room through the relay for a few seconds, both on the same `parley dev` (started
as the benches start it, `bench.stack`): no request may fail, no client may see an error,
and the stack's output must hold no error line (the latency of so few requests is not
judged). The real runs and their figures are in bench/README.md.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench import stack as bench_stack
from bench.load import __main__ as load_cli
from bench.procs import scan_log
from bench.soak import __main__ as soak_cli
from bench.soak import report


@pytest.fixture(scope="module")
def stack() -> Iterator[bench_stack.BenchStack]:
    s = bench_stack.start(env=load_cli.STACK_ENV)
    yield s
    s.stop()
    s.cleanup()


async def test_bench_load_smoke(stack: bench_stack.BenchStack) -> None:
    args = load_cli.parser().parse_args(
        ["--join-rates", "5", "--connect-rates", "5", "--seconds", "1.5", "--idle-seconds", "1",
         "--warmup", "0.5"])
    result = await load_cli.run(args, stack)
    for phase in ("joins", "connects"):  # the p99 of a few requests is not judged here
        step = result[phase]["steps"][0]
        assert not step["errors"] and step["achieved"] > 0 and step["p99_ms"] > 0, step
        assert step["client_cores"] >= 0 and "rooms" in step["cores_by_process"]


async def test_bench_soak_smoke(stack: bench_stack.BenchStack) -> None:
    args = soak_cli.parser().parse_args(
        ["--seconds", "4", "--warmup", "2", "--sample-every", "2", "--rooms", "2",
         "--media-rooms", "1", "--stay-min", "2", "--stay-max", "4", "--pause-min", "0.2",
         "--pause-max", "1", "--hold", "3"])
    result = await soak_cli.run(args, stack)
    assert result["clients"]["joins"] > 0 and not result["clients"]["errors"], result["clients"]
    assert result["media"]["calls"] >= 1 and result["media"]["failures"] == 0, result["media"]
    names = {r["process"] for r in result["rows"]}
    assert {"rooms", "signaling", "relay", "gateway", "nats-server", "redis-server"} <= names
    assert "| process | RSS MiB start |" in report.table(result["rows"])
    scan = scan_log(stack.log_text())
    assert scan.errors == 0, scan.examples
