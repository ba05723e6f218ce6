"""The background health probe of external TURN servers: the thin I/O shell of `TurnHealth`.

Every `interval` seconds each server gets one TURN Allocate with REST credentials
(`services.relay.probe.allocate`); a failure marks it down (rooms stops handing it out), a
success marks it up again. Each change is one log line naming the server by index, and the
gauge `parley_rooms_turn_server_up{server="#N"}` follows it.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Gauge

from services.relay.probe import ProbeError, allocate
from services.rooms.turnservers import ExternalTurn, TurnHealth

log = logging.getLogger(__name__)
SERVER_UP = Gauge("parley_rooms_turn_server_up",
                  "External TURN server passing its health probe (1) or not (0), by index.",
                  ["server"])


async def probe_once(health: TurnHealth, *, timeout: float) -> None:  # noqa: ASYNC109
    """Probe every server once, concurrently, and record the answers."""
    await asyncio.gather(*(_probe(health, s, timeout) for s in health.servers))


async def _probe(health: TurnHealth, server: ExternalTurn, timeout: float) -> None:  # noqa: ASYNC109
    target = server.probe_target()
    if target is None:  # turns: only: not probed, handed out as configured
        SERVER_UP.labels(server.label).set(1)
        return
    host, port, transport = target
    try:
        await allocate(host, port, secret=server.secret, transport=transport, timeout=timeout)
        ok, reason = True, ""
    except ProbeError as exc:
        ok, reason = False, type(exc.__cause__ or exc).__name__
    except Exception as exc:  # anything else from the network stack: a failed probe too
        ok, reason = False, type(exc).__name__
    change = health.record(server.index, ok=ok)
    SERVER_UP.labels(server.label).set(1 if ok else 0)
    if change == "down":
        log.warning("external TURN server %s is down (%s): no longer handed out",
                    server.label, reason)
    elif change == "up":
        log.info("external TURN server %s is up again: handed out", server.label)


async def run_probes(health: TurnHealth, *, interval: float, timeout: float) -> None:  # noqa: ASYNC109
    """Probe forever, every `interval` seconds (the first round at once); cancel to stop."""
    while True:
        await probe_once(health, timeout=timeout)
        await asyncio.sleep(interval)
