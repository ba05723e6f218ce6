"""The signalling app: `create_app()` (a uvicorn factory) and its lifespan.

The lifespan owns NATS and Redis in an `AsyncExitStack` (closed in reverse: sockets
drained, then Redis, then NATS drained). SIGTERM first closes every socket with 1001 so
that clients reconnect to another replica and resume, then lets uvicorn exit.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from types import FrameType
from typing import Any

from fastapi import FastAPI


from services.common import redisclient
from services.common.bus import NatsBus
from services.common.httpapp import SecurityHeaders, openapi_url, quiet_fastapi
from services.common.logs import setup_logging, uvicorn_log_config
from services.common.telemetry import setup_tracing
from services.signaling.handlers import WebSocketFastPath, build_router
from services.signaling.node import Node
from services.signaling.settings import SignalingSettings


REDIS_POOL_SIZE = 64
# Thousands of long-lived sockets make a full collection slow (about a second for 5 000
# sockets); with the default thresholds the collector promotes short-lived message objects
# and runs full collections every few seconds under load, stalling every socket. Collecting
# the young generation every 50 000 allocations instead of 700 lets those objects die by
# reference counting first (see bench/signaling/README.md).
GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    """Freeze what startup allocated and space out collections (process-wide)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def install_drain_on_sigterm(node: Node) -> Callable[[], None]:
    """Chain a SIGTERM handler that drains `node` before the server's own handler runs.

    Returns a function that restores the previous handler. Does nothing outside the main
    thread or when no server handler is installed (tests running the app in a thread).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return lambda: None
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    def forward(signum: int, frame: FrameType | None) -> None:
        assert callable(previous)
        previous(signum, frame)

    async def drain_then_exit(signum: int) -> None:
        try:
            await node.drain()
        finally:
            forward(signum, None)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if node.draining:  # a second SIGTERM: stop now
            forward(signum, frame)
            return
        node.draining = True

        def start() -> None:
            task = loop.create_task(drain_then_exit(signum))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        loop.call_soon_threadsafe(start)

    signal.signal(signal.SIGTERM, on_sigterm)

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, previous)

    return restore


def create_app(settings: SignalingSettings | None = None) -> FastAPI:
    """The signalling FastAPI app (settings from the environment unless given)."""
    cfg = settings or SignalingSettings()
    token_key = cfg.require("token_key")  # before serving: a missing key is one line, no trace

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_logging(cfg.log_level, json_lines=cfg.log_json, service="signaling")
        setup_tracing("signaling", cfg.otel_exporter)
        async with AsyncExitStack() as stack:
            bus = await NatsBus.connect(cfg.nats_url, name="signaling")
            stack.push_async_callback(bus.close)
            redis = redisclient.connect(cfg.redis_url, max_connections=REDIS_POOL_SIZE)
            stack.push_async_callback(redis.aclose)
            node = Node(settings=cfg, token_key=token_key, bus=bus, redis=redis,
                        sfu_request=bus.request)
            tune_gc()
            await node.start()
            stack.push_async_callback(node.stop)
            stack.callback(install_drain_on_sigterm(node))
            app.state.node = node
            yield

    app = FastAPI(
        title="Parley signalling",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=openapi_url(cfg.openapi),
        # FastAPI's own request spans carry the client address: signalling makes its own
        **quiet_fastapi(),
    )
    app.include_router(build_router())
    app.add_middleware(SecurityHeaders)
    app.add_middleware(WebSocketFastPath)
    return app


def uvicorn_options(settings: SignalingSettings) -> dict[str, Any]:
    """How uvicorn must run this app (the CLI and `python -m services.signaling` share it)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "factory": True,
        "ws": "websockets-sansio",  # no per-socket tasks: the lightest websocket protocol
        "ws_per_message_deflate": False,  # ~50 KiB per socket, for frames of SDP text
        "ws_max_size": 1 << 20,  # beyond this uvicorn closes with 1009 before we see it
        "ws_ping_interval": 20.0,
        "ws_ping_timeout": 20.0,
        "access_log": False,  # it prints client addresses and paths
        "log_config": uvicorn_log_config(),
        "backlog": 4096,
        "timeout_graceful_shutdown": settings.drain_timeout + 5.0,
        "lifespan": "on",
    }
