"""Probing relays with a real WebRTC call: `parley relay probe HOST:PORT` as a subprocess.

A subprocess keeps aiortc (and its threads) out of the operator's event loop and bounds a
stuck probe with a timeout. The TURN secret goes in the child's environment, never on its
command line. `next_record` (pure) folds one result into a relay's `ProbeRecord`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Final

from parley_operator.observe import ProbeRecord

__all__ = ["ProbeFn", "next_record", "subprocess_probe"]

PROBE_TIMEOUT: Final[float] = 20.0

# (address "HOST:PORT", current TURN secret) -> (ok, message)
ProbeFn = Callable[[str, str], Awaitable[tuple[bool, str]]]


def next_record(previous: ProbeRecord | None, *, ok: bool, message: str,
                now: datetime) -> ProbeRecord:
    """The record after one more probe: failures count up in a row, a success resets them."""
    failures = 0 if ok else (previous.consecutive_failures if previous else 0) + 1
    return ProbeRecord(time=now, ok=ok, message=message, consecutive_failures=failures)


async def subprocess_probe(address: str, secret: str) -> tuple[bool, str]:
    """Run `python -m services.relay probe ADDRESS` (relay-only ICE through the relay)."""
    env = {**os.environ, "PARLEY_RELAY_SECRET": secret}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.relay", "probe", address,
        "--timeout", str(PROBE_TIMEOUT - 2),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), PROBE_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return False, f"probe timed out after {PROBE_TIMEOUT:g}s"
    text = out.decode(errors="replace").strip().splitlines()
    last = text[-1] if text else ""
    return proc.returncode == 0, last[:512]
