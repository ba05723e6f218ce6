"""Unit tests of the app wiring that needs no server: uvicorn options, the /ws fast path."""

from __future__ import annotations

from typing import Any

from services.signaling.app import GC_THRESHOLDS, create_app, uvicorn_options
from services.signaling.handlers import WebSocketFastPath, build_router
from services.signaling.settings import SignalingSettings


def test_uvicorn_options_privacy_and_memory() -> None:
    opts = uvicorn_options(SignalingSettings(host="127.0.0.1", port=9999))
    assert opts["access_log"] is False
    assert opts["ws_per_message_deflate"] is False
    assert opts["factory"] is True
    assert (opts["host"], opts["port"]) == ("127.0.0.1", 9999)


def test_gc_thresholds_space_out_young_collections() -> None:
    assert GC_THRESHOLDS[0] >= 10_000


def test_router_routes() -> None:
    paths = {getattr(r, "path", "") for r in build_router().routes}
    assert {"/ws", "/readyz"} <= paths  # /metrics and /healthz: included routers
    from fastapi.testclient import TestClient

    client = TestClient(create_app(SignalingSettings(token_key="k" * 32)))  # no lifespan run
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/metrics").status_code == 200


def test_create_app_without_starting() -> None:
    app = create_app(SignalingSettings(token_key="k" * 32))
    assert app.title == "Parley signalling"


async def test_fast_path_passes_other_requests_on() -> None:
    seen: list[dict[str, Any]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)

    mw = WebSocketFastPath(inner)
    await mw({"type": "http", "path": "/ws"}, None, None)  # type: ignore[arg-type]
    await mw({"type": "websocket", "path": "/other"}, None, None)  # type: ignore[arg-type]
    assert [s["type"] for s in seen] == ["http", "websocket"]
