"""Faults 3-5 of issue 10 in a real call, the short form of `make chaos`: the harness's own
scenarios (bench/chaos/scenarios.py) on a dev stack with two signalling replicas, direct
mode, a short bound. Each must heal with its checks passed: no acknowledged beacon or
diagnostic record lost (NATS), a locked room never opened to a stranger (Redis), new joins
working again (rooms). Figures are printed, never asserted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("playwright", reason="the playwright pip package is not installed")

from bench.chaos.__main__ import STACK_ENV
from bench.chaos.scenarios import BY_KEY, run_fault, stack_ready, wait_until
from tests.stack import Stack, start_stack

pytestmark = pytest.mark.e2e

BOUND = 60.0  # generous: 2 cores shared with other test runs
SETTLE = 3.0


@pytest.fixture(scope="module")
def chaos_stack() -> Iterator[Stack]:
    """Two signalling replicas; new rooms reopen 10 s after a Redis loss (15 s by default)."""
    s = start_stack(signaling_replicas=2,
                    env={**STACK_ENV, "PARLEY_REDIS_RECOVERY_GRACE": "10"})
    yield s
    s.stop()


@pytest.mark.parametrize("fault", ["nats", "redis", "rooms"])
def test_chaos_fault_heals_with_checks(chaos_stack: Stack, new_page: Any, fault: str,
                                       capsys: Any) -> None:
    assert wait_until(lambda: stack_ready(chaos_stack), BOUND), chaos_stack.output()[-3000:]
    outcome = run_fault(BY_KEY[fault], chaos_stack, new_page, bound=BOUND, settle=SETTLE)
    with capsys.disabled():
        print(f"\n[parley chaos] {BY_KEY[fault].title}: {outcome.cell()}; "
              f"saw: {'; '.join(outcome.saw) or 'nothing'}")
    assert outcome.ok, (outcome.cell(), outcome.saw, chaos_stack.output()[-3000:])
