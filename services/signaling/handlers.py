"""HTTP and websocket routes: `/ws`, `/healthz`, `/readyz`, `/metrics`.

`/ws` is also served by `WebSocketFastPath`, an ASGI middleware that hands the socket to
the node before the router: every frame of Starlette's routing and FastAPI's dependency
machinery would otherwise stay suspended on the stack of each of thousands of sockets.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, WebSocket
from starlette.types import ASGIApp, Receive, Scope, Send

from services.common.promhttp import health_router, metrics_router
from services.signaling.node import Node


def _node(app: object) -> Node:
    node = getattr(getattr(app, "state", None), "node", None)
    if not isinstance(node, Node):
        raise RuntimeError("signalling node not started (lifespan not run)")
    return node


WS_PATH = "/ws"


class WebSocketFastPath:
    """Serve `GET /ws` websockets straight from the middleware stack."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == WS_PATH:
            await _node(scope["app"]).serve(WebSocket(scope, receive, send))
            return
        await self.app(scope, receive, send)


def build_router() -> APIRouter:
    """The service's routes."""
    router = APIRouter()

    @router.websocket(WS_PATH)  # reached only without WebSocketFastPath
    async def ws(websocket: WebSocket) -> None:
        await _node(websocket.app).serve(websocket)

    @router.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        ok = await _node(request.app).ready()
        return Response('{"status":"ready"}' if ok else '{"status":"not ready"}',
                        status_code=200 if ok else 503, media_type="application/json")

    router.include_router(metrics_router())
    router.include_router(health_router())
    return router
