"""The metrics service as an app: factory, lifespan (NATS, Redis, aggregator), health.

The lifespan follows the house shape: an `AsyncExitStack` owns the connections, a stop
`Event` ends the aggregator, shutdown drains NATS then closes Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from services.common import redisclient
from services.common.bus import NatsBus
from services.common.httpapp import add_private_middleware, openapi_url, quiet_fastapi
from services.common.logs import setup_logging
from services.common.promhttp import health_router, metrics_router
from services.common.ratelimit import RateLimiter
from services.common.securitytxt import security_txt_router
from services.common.telemetry import setup_tracing
from services.metrics import aggregator
from services.metrics.bus import ensure_stream
from services.metrics.errors import MetricsError
from services.metrics.ingest import MAX_BEACON_BYTES
from services.metrics.noise import CountNoise
from services.metrics.routes import Context, build_router
from services.metrics.settings import MetricsSettings
from services.metrics.store import AggregateStore
from services.metrics.useragent import derive_client

log = logging.getLogger(__name__)


def create_app(settings: MetricsSettings | None = None, *,
               clock: Callable[[], float] = time.time) -> FastAPI:
    """Build the metrics app.

    Args:
        settings: the settings (read from the environment when None).
        clock: Unix time source (tests inject one to move across days).
    """
    settings = settings or MetricsSettings()
    setup_logging(settings.log_level, json_lines=settings.log_json, service="metrics")
    setup_tracing("metrics", settings.otel_exporter)
    if settings.metrics_epsilon is not None:
        CountNoise(settings.metrics_epsilon, sensitivity=1)  # fail at start if opendp missing
    derive_client("Mozilla/5.0")  # load ua-parser's matchers now, not on the first beacon
    if not settings.api_keys():
        log.warning("PARLEY_METRICS_API_KEYS is not set: every /reports request gets 401")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            bus, store, epoch = await _connect(stack, settings, name="metrics")
            app.state.bus = bus
            app.state.ctx = Context(
                settings=settings, js=bus.js, store=store, clock=clock,
                limiter=RateLimiter(rate=settings.metrics_rate, burst=settings.metrics_burst),
                api_keys=settings.api_keys(),
            )
            stop = asyncio.Event()
            task = (asyncio.create_task(aggregator.run(bus.js, store, epoch=epoch,
                                                       batch=settings.metrics_batch, stop=stop))
                    if settings.metrics_aggregate else None)
            try:
                yield
            finally:
                stop.set()
                if task is not None:
                    await task

    # FastAPI's own telemetry is off: `add_private_middleware` makes the one span per request,
    # named by route template; FastAPI's would duplicate it (and it records raw URL paths).
    app = FastAPI(title="Parley metrics", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=openapi_url(settings.openapi), **quiet_fastapi())
    add_private_middleware(app, service="metrics", max_body=MAX_BEACON_BYTES)
    if settings.metrics_allowed_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.metrics_allowed_origins,
            allow_methods=["GET", "POST"], allow_headers=["Content-Type"],
            allow_credentials=False, max_age=3600,
        )

    @app.exception_handler(MetricsError)
    async def on_error(request: Request, exc: MetricsError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    app.include_router(build_router())
    app.include_router(metrics_router())
    app.include_router(health_router())
    app.include_router(security_txt_router(settings.security_contact, settings.public_url))

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        bus: NatsBus = request.app.state.bus
        redis_ok = await request.app.state.ctx.store.ping()
        ok = bus.connected and redis_ok
        return JSONResponse({"ready": ok, "nats": bus.connected, "redis": redis_ok},
                            status_code=200 if ok else 503)

    return app


async def _connect(stack: contextlib.AsyncExitStack, settings: MetricsSettings, *,
                   name: str) -> tuple[NatsBus, AggregateStore, int]:
    """NATS and Redis (closed by `stack`), the beacon stream, the aggregate store."""
    bus = await NatsBus.connect(settings.nats_url, name=name)
    stack.push_async_callback(bus.close)
    redis = redisclient.connect(settings.redis_url)
    stack.push_async_callback(redis.aclose)
    epoch = await ensure_stream(bus.js, max_age=settings.metrics_raw_max_age,
                                dedup_window=settings.metrics_dedup_window)
    store = AggregateStore(redis, retention_days=settings.metrics_retention_days,
                           raw_max_age=settings.metrics_raw_max_age)
    return bus, store, epoch


async def run_aggregator_only(settings: MetricsSettings, stop: asyncio.Event) -> None:
    """`parley metrics aggregate`: only the aggregator (no HTTP), until `stop` is set."""
    setup_logging(settings.log_level, json_lines=settings.log_json, service="metrics-agg")
    async with contextlib.AsyncExitStack() as stack:
        bus, store, epoch = await _connect(stack, settings, name="metrics-aggregator")
        await aggregator.run(bus.js, store, epoch=epoch, batch=settings.metrics_batch,
                             stop=stop)
