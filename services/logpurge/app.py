"""Logpurge as a service: the purge loop, erasure over NATS and HTTP, health and gauges."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.common import subjects
from services.common.bus import Envelope, NatsBus
from services.common.diaglog import DiagLog
from services.common.httpapp import add_private_middleware, openapi_url, quiet_fastapi
from services.common.logs import setup_logging
from services.common.promhttp import health_router, metrics_router
from services.common.roomnames import RoomNameError, normalize
from services.common.telemetry import setup_tracing
from services.logpurge.policy import DAY, oldest_age, overdue
from services.logpurge.settings import LogpurgeSettings
from services.logpurge.store import DiagStore

log = logging.getLogger(__name__)
ERASE_SUBJECT = subjects.logpurge_erase()
#: Seconds between two reads of the log's status for the gauges (besides each purge).
GAUGE_EVERY = 15.0
RECORDS = Gauge("parley_diaglog_records", "Records in the diagnostic log.")
OLDEST_AGE = Gauge("parley_diaglog_oldest_record_age_seconds",
                   "Age of the oldest record, computed at scrape time.")
RETENTION = Gauge("parley_logpurge_retention_seconds",
                  "The retention: no record may be older after a purge (PARLEY_RETENTION_DAYS).")
INTERVAL = Gauge("parley_logpurge_interval_seconds",
                 "Seconds between purge cycles (PARLEY_LOGPURGE_INTERVAL).")
#: The oldest record's time as last read from the store; its age is computed at each scrape,
#: so that the gauge keeps growing between purge cycles when nothing refreshes it.
_oldest_at: list[float | None] = [None]
OLDEST_AGE.set_function(lambda: oldest_age(_oldest_at[0], now=time.time()))
LAST_PURGE = Gauge("parley_logpurge_last_purge_timestamp_seconds", "When the last purge ran.")
REMOVED = Counter("parley_logpurge_removed_total", "Records removed, by reason.", ["reason"])
KEYS_DESTROYED = Counter("parley_logpurge_day_keys_destroyed_total", "Day keys destroyed.")


class EraseRequest(BaseModel):
    """Erase every record of one IP or one room (exactly one of them)."""

    model_config = ConfigDict(extra="forbid")
    ip: str | None = Field(default=None, max_length=64)
    room: str | None = Field(default=None, max_length=64)


class KeyedEraseRequest(BaseModel):
    """Over NATS only keyed hashes travel, never an address or a name."""

    model_config = ConfigDict(extra="forbid")
    ip_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    room_key: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")


async def refresh_gauges(store: DiagStore) -> Any:
    st = await store.status()
    RECORDS.set(st.records)
    _oldest_at[0] = st.oldest_at
    if st.last_purge_at is not None:
        LAST_PURGE.set(st.last_purge_at)
    return st


async def purge_loop(store: DiagStore, interval: float, stop: asyncio.Event) -> None:
    """Purge now, then every `interval` seconds until `stop` is set."""
    while not stop.is_set():
        try:
            result = await store.purge()
            REMOVED.labels("retention").inc(result.removed)
            KEYS_DESTROYED.inc(result.keys_destroyed)
            await refresh_gauges(store)
            log.info("purge removed %d records, destroyed %d day keys",
                     result.removed, result.keys_destroyed)
        except Exception:
            log.exception("purge cycle failed; retrying next interval")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def gauge_loop(store: DiagStore, every: float, stop: asyncio.Event) -> None:
    """Re-read the log's status every `every` seconds, apart from the purge loop, so that
    the gauges follow new records and keep moving when a purge hangs (the alert's input)."""
    while not stop.is_set():
        try:
            await refresh_gauges(store)
        except Exception as exc:
            log.warning("diagnostic log status unavailable (%s)", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def create_app(settings: LogpurgeSettings | None = None) -> FastAPI:
    settings = settings or LogpurgeSettings()
    setup_logging(settings.log_level, json_lines=settings.log_json, service="logpurge")
    setup_tracing("logpurge", settings.otel_exporter)
    hash_key = settings.require("hash_key")
    RETENTION.set(settings.retention_days * DAY)
    INTERVAL.set(settings.logpurge_interval)
    admin_key = (settings.logpurge_admin_key.get_secret_value()
                 if settings.logpurge_admin_key else "")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            bus = await NatsBus.connect(settings.nats_url, name="logpurge")
            stack.push_async_callback(bus.close)
            diag = DiagLog(bus.js, hash_key=hash_key, retention_days=settings.retention_days,
                           purge_interval=settings.logpurge_interval)
            store = DiagStore(bus, diag, hash_key=hash_key,
                              retention_days=settings.retention_days,
                              clock_skew=settings.logpurge_clock_skew)
            await store.ensure()

            async def on_erase(env: Envelope) -> None:
                await _erase_over_nats(bus, store, env)

            await bus.subscribe(ERASE_SUBJECT, on_erase, queue="logpurge")
            stop = asyncio.Event()
            task = asyncio.create_task(purge_loop(store, settings.logpurge_interval, stop))
            gauges = asyncio.create_task(
                gauge_loop(store, min(GAUGE_EVERY, settings.logpurge_interval), stop))
            app.state.bus, app.state.store = bus, store
            yield
            stop.set()
            await task
            await gauges

    app = FastAPI(title="Parley logpurge", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=openapi_url(settings.openapi), **quiet_fastapi())
    add_private_middleware(app, service="logpurge")
    app.include_router(metrics_router())
    app.include_router(health_router())

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        bus: NatsBus = request.app.state.bus
        try:
            st = await refresh_gauges(request.app.state.store)
        except Exception:
            return JSONResponse({"ready": False, "nats": bus.connected}, status_code=503)
        late = overdue(st.oldest_at, now=time.time(), retention_days=settings.retention_days,
                       interval=settings.logpurge_interval)
        ok = bus.connected and not late
        body = {"ready": ok, "nats": bus.connected, "overdue": late, "records": st.records}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.post("/admin/erase")
    async def erase(body: EraseRequest, request: Request,
                    authorization: str = Header(default="")) -> dict[str, int]:
        given = authorization.removeprefix("Bearer ").strip()
        if not admin_key or not hmac.compare_digest(given.encode(), admin_key.encode()):
            raise HTTPException(status_code=401, detail="admin key required")
        if (body.ip is None) == (body.room is None):
            raise HTTPException(status_code=422, detail="give exactly one of ip or room")
        room = None
        if body.room is not None:
            try:
                room = normalize(body.room)
            except RoomNameError as exc:
                raise HTTPException(status_code=422, detail=str(exc)) from exc
        removed = await request.app.state.store.erase(ip=body.ip, room=room)
        REMOVED.labels("erasure").inc(removed)
        return {"removed": removed}

    return app


async def _erase_over_nats(bus: NatsBus, store: DiagStore, env: Envelope) -> None:
    reply = env.reply
    try:
        req = KeyedEraseRequest.model_validate_json(env.data)
        if (req.ip_key is None) == (req.room_key is None):
            raise ValueError("give exactly one of ip_key or room_key")
        removed = await store.erase_keyed(ip_key=req.ip_key, room_key=req.room_key)
        REMOVED.labels("erasure").inc(removed)
        answer: dict[str, Any] = {"removed": removed}
    except (ValidationError, ValueError) as exc:
        answer = {"error": str(exc).splitlines()[0]}
    if reply:
        await bus.publish(reply, json.dumps(answer).encode())
