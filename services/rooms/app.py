"""The rooms service: app factory and lifespan (NATS, Redis, diagnostic log, relay registry)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common import redisclient
from services.common.bus import NatsBus
from services.common.credentials import SecretSource
from services.common.diaglog import DiagLog
from services.common.diagoutbox import DiagOutbox
from services.common.httpapp import add_private_middleware, openapi_url, quiet_fastapi
from services.common.logs import setup_logging
from services.common.promhttp import health_router, metrics_router
from services.common.ratelimit import RateLimiter
from services.common.roomstate import RoomState
from services.common.securitytxt import security_txt_router
from services.common.telemetry import setup_tracing
from services.rooms.bus import follow_relays, follow_sfus
from services.rooms.guard import ApiGuard
from services.rooms.relays import RelayRegistry
from services.rooms.relaystats import RelayRegistryCollector
from services.rooms.sfus import SfuRegistry
from services.rooms.errorpages import html_or_json_error
from services.rooms.routes import RECOVERING, WEB_CSP, api_router, web_router
from services.rooms.settings import RoomsSettings
from services.rooms.turnprobe import run_probes
from services.rooms.turnservers import TurnHealth

log = logging.getLogger(__name__)
BUNDLED_WEB = Path(__file__).resolve().parents[2] / "web"


@dataclass
class RoomsContext:
    """Everything a request handler needs; one per process."""

    settings: RoomsSettings
    token_key: str
    hash_key: str
    bus: NatsBus
    redis: aioredis.Redis
    rooms: RoomState
    relays: RelayRegistry
    sfus: SfuRegistry
    diag: DiagOutbox
    limiter: RateLimiter
    web_dir: Path
    turn_secret: SecretSource
    turn_health: TurnHealth


async def _cancelled(task: asyncio.Task[None]) -> None:
    """Cancel a background task and wait until it has stopped."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def redis_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Redis away (restarting, unreachable): 503 and try again, never a 500 (fault 4)."""
    log.warning("redis unavailable: %s", type(exc).__name__)
    return JSONResponse({"detail": RECOVERING}, status_code=503, headers={"Retry-After": "2"})


def create_app(settings: RoomsSettings | None = None) -> FastAPI:
    """Build the rooms app; connections are made in the lifespan."""
    settings = settings or RoomsSettings()
    setup_logging(settings.log_level, json_lines=settings.log_json, service="rooms")
    setup_tracing("rooms", settings.otel_exporter)
    token_key = settings.require("token_key")
    hash_key = settings.require("hash_key")
    web_dir = Path(settings.web_dir) if settings.web_dir else BUNDLED_WEB

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            bus = await NatsBus.connect(settings.nats_url, name="rooms")
            stack.push_async_callback(bus.close)
            redis = redisclient.connect(settings.redis_url)
            stack.push_async_callback(redis.aclose)
            diag = DiagLog(bus.js, hash_key=hash_key, retention_days=settings.retention_days)
            await diag.ensure(create=settings.diag_create)
            outbox = DiagOutbox(diag)  # no record lost while NATS is away (fault 3)
            retry = asyncio.get_running_loop().create_task(outbox.run())
            stack.push_async_callback(outbox.close)
            stack.callback(retry.cancel)
            registry = RelayRegistry(ttl=settings.relay_ttl)
            await follow_relays(bus, registry)
            sfus = SfuRegistry(ttl=settings.sfu_ttl)
            await follow_sfus(bus, sfus)
            collector = RelayRegistryCollector(registry)
            REGISTRY.register(collector)
            stack.callback(REGISTRY.unregister, collector)
            health = TurnHealth(settings.external_turn())
            if health.servers:
                probes = asyncio.create_task(run_probes(
                    health, interval=settings.turn_probe_interval,
                    timeout=settings.turn_probe_timeout))
                stack.push_async_callback(_cancelled, probes)
                log.info("%d external TURN server(s), probed every %.0f s",
                         len(health.servers), settings.turn_probe_interval)
            rooms = RoomState(redis, join_grace=settings.join_grace,
                              recovery_grace=settings.redis_recovery_grace)
            with contextlib.suppress(Exception):  # remember this Redis's epoch (fault 4)
                await rooms.sync_epoch()
            app.state.ctx = RoomsContext(
                settings=settings, token_key=token_key, hash_key=hash_key, bus=bus,
                redis=redis, rooms=rooms, relays=registry, sfus=sfus, diag=outbox,
                limiter=RateLimiter(rate=settings.join_rate, burst=settings.join_burst),
                web_dir=web_dir,
                turn_secret=SecretSource(
                    value=settings.turn_secret.get_secret_value() if settings.turn_secret else "",
                    path=settings.turn_secret_file),
                turn_health=health,
            )
            log.info("rooms ready")
            yield
            log.info("rooms shutting down")

    app = FastAPI(title="Parley rooms", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=openapi_url(settings.openapi, "/api/openapi.json"),
                  **quiet_fastapi())
    # besides the request's own origin: the listed ones, and the public URL's when set
    app.add_middleware(ApiGuard, allowed_origins=[
        *settings.allowed_origins, *([settings.public_url] if settings.public_url else [])])
    add_private_middleware(app, service="rooms", csp=WEB_CSP)
    # Browsers get an HTML page for a mistyped link; the JSON API keeps JSON.
    app.add_exception_handler(StarletteHTTPException, html_or_json_error)
    app.add_exception_handler(RedisError, redis_unavailable)
    app.include_router(metrics_router())
    app.include_router(health_router())
    app.include_router(security_txt_router(settings.security_contact, settings.public_url))
    app.include_router(api_router)
    app.include_router(web_router(web_dir))
    return app
