"""Logpurge's gauges at scrape time: the oldest record's age keeps growing between purges,
and the retention and purge interval are exported beside it (the alert compares them)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from prometheus_client import REGISTRY
from pydantic import SecretStr

from services.logpurge import app as logpurge_app
from services.logpurge.settings import LogpurgeSettings


@dataclass
class _Status:
    records: int
    oldest_at: float | None
    last_purge_at: float | None


class _StatusOnly:
    """A fake DiagStore that only answers status() (the gauges read nothing else)."""

    def __init__(self, status: _Status) -> None:
        self._status = status
        self.reads = 0
        self.read = asyncio.Event()

    async def status(self) -> _Status:
        self.reads += 1
        self.read.set()
        return self._status


def _value(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    assert value is not None, name
    return value


async def test_refresh_gauges_oldest_age_computed_at_scrape() -> None:
    oldest = time.time() - 1000.0
    await logpurge_app.refresh_gauges(_StatusOnly(_Status(3, oldest, oldest + 1)))  # type: ignore[arg-type]
    first = _value("parley_diaglog_oldest_record_age_seconds")
    assert 1000.0 <= first < 1100.0
    # the age is time.time() - oldest_at at each read, without another refresh
    logpurge_app._oldest_at[0] = oldest - 500.0
    assert _value("parley_diaglog_oldest_record_age_seconds") >= first + 500.0
    await logpurge_app.refresh_gauges(_StatusOnly(_Status(0, None, None)))  # type: ignore[arg-type]
    assert _value("parley_diaglog_oldest_record_age_seconds") == 0.0
    assert _value("parley_diaglog_records") == 0.0


def test_create_app_exports_retention_and_interval() -> None:
    settings = LogpurgeSettings(hash_key=SecretStr("k" * 32), retention_days=30,
                                logpurge_interval=600)
    logpurge_app.create_app(settings)
    assert _value("parley_logpurge_retention_seconds") == 30 * 86400.0
    assert _value("parley_logpurge_interval_seconds") == 600.0


async def test_gauge_loop_follows_new_records_between_purges() -> None:
    status = _Status(0, None, None)
    store = _StatusOnly(status)
    stop = asyncio.Event()
    task = asyncio.create_task(logpurge_app.gauge_loop(store, 0.01, stop))  # type: ignore[arg-type]
    try:
        status.records, status.oldest_at = 2, time.time() - 50.0  # written after a purge
        async with asyncio.timeout(5):
            for _ in range(2):  # the read under way may predate the change: wait for the next
                store.read.clear()
                await store.read.wait()
        assert _value("parley_diaglog_records") == 2.0
        assert _value("parley_diaglog_oldest_record_age_seconds") >= 50.0
    finally:
        stop.set()
        await task
