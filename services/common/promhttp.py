"""The endpoints every FastAPI service has alike: Prometheus `/metrics` and `/healthz`."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest


def metrics_router(registry: CollectorRegistry = REGISTRY) -> APIRouter:
    """A router serving `GET /metrics` in the Prometheus text format."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def health_router() -> APIRouter:
    """`GET /healthz`: the process is up (liveness); readiness is each service's own."""
    router = APIRouter()

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return router
