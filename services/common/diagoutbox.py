"""Diagnostic records on their way to JetStream: none lost while NATS is away.

A join's record is written at once when JetStream answers within `WRITE_TIMEOUT`; otherwise
it waits here, in memory and in order, and `run()` writes it when NATS is back, each under
the random `Nats-Msg-Id` it got on its first try (so a write whose acknowledgement was lost
is stored once: the stream de-duplicates within its window). While records wait, new ones
queue behind them without waiting, so a join never waits on NATS more than once per outage.
At most `max_pending` wait: past that a record is refused (`DiagBacklogFull`, counted by
the caller). They live in this process only: a rooms process killed during an outage loses
what it held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Final

from prometheus_client import Gauge

from services.common.diaglog import DiagLog

log = logging.getLogger(__name__)
WRITE_TIMEOUT: Final[float] = 1.0
MAX_PENDING: Final[int] = 10_000
RETRY_MIN: Final[float] = 0.5
RETRY_MAX: Final[float] = 5.0
PENDING = Gauge("parley_diag_pending_records", "Diagnostic records waiting for JetStream.")


class DiagBacklogFull(RuntimeError):
    """Too many records wait for JetStream already; this one was not kept."""


@dataclass(frozen=True, slots=True)
class _Record:
    ip: str
    room: str
    service: str
    event: str
    at: float
    msg_id: str


class DiagOutbox:
    """`DiagLog.write` that keeps what JetStream could not take yet, and retries it."""

    def __init__(self, diag: DiagLog, *, max_pending: int = MAX_PENDING,
                 write_timeout: float = WRITE_TIMEOUT) -> None:
        self.diag = diag
        self.max_pending = max_pending
        self.write_timeout = write_timeout
        self._pending: deque[_Record] = deque()
        self._wake = asyncio.Event()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def write(self, *, ip: str, room: str, service: str, event: str = "join",
                    now: float | None = None) -> None:
        """Write one record now, or keep it for `run()`.

        Raises:
            DiagBacklogFull: `max_pending` records wait already.
        """
        rec = _Record(ip, room, service, event, time.time() if now is None else now,
                      secrets.token_urlsafe(16))
        if not self._pending:
            try:
                await self._write(rec)
                return
            except Exception as exc:
                log.warning("diagnostic record kept until NATS answers: %s",
                            type(exc).__name__)
        if len(self._pending) >= self.max_pending:
            raise DiagBacklogFull(f"{self.max_pending} diagnostic records wait already")
        self._pending.append(rec)
        PENDING.set(len(self._pending))
        self._wake.set()

    async def _write(self, rec: _Record) -> None:
        await asyncio.wait_for(self.diag.write(
            ip=rec.ip, room=rec.room, service=rec.service, event=rec.event, now=rec.at,
            msg_id=rec.msg_id, ack_wait=self.write_timeout), timeout=self.write_timeout + 1)

    async def flush(self) -> bool:
        """Write what waits, oldest first; stop at the first failure. True if none is left."""
        while self._pending:
            try:
                await self._write(self._pending[0])
            except Exception:
                return False
            self._pending.popleft()
            PENDING.set(len(self._pending))
        return True

    async def run(self) -> None:
        """Retry waiting records with backoff, for ever (cancel to stop)."""
        delay = RETRY_MIN
        while True:
            await self._wake.wait()
            self._wake.clear()
            while not await self.flush():
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX, delay * 2)
            if delay > RETRY_MIN:
                log.info("diagnostic records written after NATS came back")
            delay = RETRY_MIN

    async def close(self, deadline: float = 5.0) -> None:
        """At shutdown: one last try, for at most `deadline` seconds."""
        with contextlib.suppress(Exception, asyncio.TimeoutError):
            await asyncio.wait_for(self.flush(), timeout=deadline)
        if self._pending:
            log.warning("%d diagnostic records not written at shutdown", len(self._pending))
