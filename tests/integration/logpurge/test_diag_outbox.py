"""Fault 3 for the diagnostic log: NATS stopped (SIGSTOP) for a while, then killed and
started again on the same port with its JetStream files. Every record written meanwhile
is stored once it is back, each exactly once, in order."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from services.common import subjects
from services.common.bus import NatsBus
from services.common.diaglog import DiagLog
from services.common.diagoutbox import DiagOutbox
from services.common.infra import NatsServer

HASH_KEY = "test-hash-key"
STOPPED = 3.0  # seconds NATS is frozen before it is killed and started again
DEADLINE = 30.0


async def _stored(bus: NatsBus) -> int:
    return int((await bus.js.stream_info(subjects.DIAG_STREAM)).state.messages)


async def test_diag_outbox_nats_stopped_then_restarted_loses_no_record() -> None:
    srv = NatsServer().start()
    bus = await NatsBus.connect(srv.url, name="test")
    diag = DiagLog(bus.js, hash_key=HASH_KEY)
    await diag.ensure()
    outbox = DiagOutbox(diag, write_timeout=0.5)
    runner = asyncio.get_running_loop().create_task(outbox.run())
    try:
        await outbox.write(ip="192.0.2.1", room="before", service="t")
        assert await _stored(bus) == 1 and outbox.pending == 0

        assert srv.proc is not None
        os.kill(srv.proc.pid, signal.SIGSTOP)
        started = time.monotonic()
        for i in range(5):  # joins during the outage: none waits more than once
            await outbox.write(ip=f"192.0.2.{10 + i}", room=f"during-{i}", service="t")
        assert time.monotonic() - started < 3.0
        assert outbox.pending == 5
        await asyncio.sleep(STOPPED)  # the outage itself, not a synchronisation
        srv.restart()  # SIGKILL of the frozen server, then the same port and files

        deadline = time.monotonic() + DEADLINE
        while outbox.pending and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        assert outbox.pending == 0
        await outbox.write(ip="192.0.2.99", room="after", service="t")
        assert await _stored(bus) == 7  # each once: retries carry their Nats-Msg-Id
    finally:
        runner.cancel()
        await bus.close()
        srv.stop()
