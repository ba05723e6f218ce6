"""HTTP routes of the metrics service: beacons in, schema and k-anonymous reports out.

`POST /beacon` answers 204 only once JetStream acknowledged the record. `GET /reports...`
needs an API key (compared in constant time against each configured key). `GET /stats.json`
is the public, key-less subset the `/stats` page draws from: the same k suppression, only
the coarse public groupings. Errors of `errors.py` map to their HTTP status here.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import Counter
from starlette.requests import ClientDisconnect
from starlette.routing import Route

from services.common.clientaddr import client_address
from services.common.hashing import keyed_hash
from services.common.ratelimit import RateLimiter
from services.metrics import bus as metrics_bus
from services.metrics import periods
from services.metrics.cube import merge
from services.metrics.errors import BeaconTooLarge, MetricsError, Unauthorized
from services.metrics.ingest import MAX_BEACON_BYTES, parse_beacon, to_record
from services.metrics.reports import PUBLIC, REPORTS, Report, build_report, to_csv
from services.metrics.schema import beacon_json_schema
from services.metrics.settings import MetricsSettings
from services.metrics.store import AggregateStore

BEACONS = Counter("parley_metrics_beacons_total", "Beacons received, by outcome.", ["outcome"])


@dataclass
class Context:
    """What the routes need; built by the app's lifespan."""

    settings: MetricsSettings
    js: Any
    store: AggregateStore
    clock: Callable[[], float]
    limiter: RateLimiter
    api_keys: list[bytes]
    source_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def source(self, request: Request) -> str:
        """An in-memory-only token for the request's source: a keyed hash under a key that
        lives and dies with this process, so not even memory holds the address as a key."""
        peer = request.client.host if request.client else None
        addr = client_address(peer, request.headers.get("x-forwarded-for"),
                              self.settings.trusted_proxies)
        return keyed_hash(self.source_key, addr, scope="beacon-rate")


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def check_key(given: str, keys: list[bytes]) -> None:
    """Accept `given` if it equals one of `keys`, comparing in constant time with every key.

    Raises:
        Unauthorized: no key matched (or none is configured).
    """
    candidate = given.encode()
    ok = False
    for k in keys:
        ok |= hmac.compare_digest(candidate, k)
    if not ok:
        raise Unauthorized("a valid API key is required (Authorization: Bearer <key>)")


def _given_key(authorization: str, x_api_key: str) -> str:
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return x_api_key.strip()


async def _report(ctx: Context, name: str, period: str | None) -> Report:
    s = ctx.settings
    now = ctx.clock()
    days = periods.resolve(period, s.metrics_period, now=now,
                           include_current=s.metrics_include_current_period,
                           retention_days=s.metrics_retention_days)
    label = periods.label_of(days[0], s.metrics_period)
    cube = merge(await ctx.store.days([d.isoformat() for d in days]))
    report = build_report(name, cube, k=s.metrics_k, period=label, epsilon=s.metrics_epsilon)
    if s.metrics_epsilon is not None and periods.is_completed(label, s.metrics_period, now=now):
        frozen = await ctx.store.frozen_release(name, label, report.model_dump_json())
        report = Report.model_validate_json(frozen)
    return report


async def beacon(request: Request) -> Response:
    """`POST /beacon`: validate, classify, publish; 204 once JetStream acknowledged.

    A plain Starlette endpoint rather than a FastAPI route: it is the hot path, and it
    reads its body itself (FastAPI's body parsing and dependency solving would add
    nothing but cost). Raises `MetricsError`s, which the app maps to their status.
    """
    ctx = _ctx(request)
    if not ctx.limiter.allow(ctx.source(request), now=ctx.clock()):
        BEACONS.labels("rate-limited").inc()
        return JSONResponse({"detail": "too many beacons"}, status_code=429,
                            headers={"Retry-After": "1"})
    try:
        body = await request.body()
    except ClientDisconnect:  # or the body-limit middleware cut a chunked body short
        raise BeaconTooLarge(f"a beacon is at most {MAX_BEACON_BYTES} bytes") from None
    try:
        if len(body) > MAX_BEACON_BYTES:  # a chunked body the middleware could not pre-check
            raise BeaconTooLarge(f"a beacon is at most {MAX_BEACON_BYTES} bytes")
        parsed = parse_beacon(body, request.headers.get("content-type"))
        payload, msg_id = to_record(parsed, request.headers, now=ctx.clock())
        stored = await metrics_bus.publish_beacon(ctx.js, payload, msg_id=msg_id)
    except MetricsError as exc:
        BEACONS.labels(type(exc).__name__).inc()
        raise
    BEACONS.labels("accepted" if stored else "duplicate").inc()
    return Response(status_code=204)


def build_router() -> APIRouter:
    """The metrics routes (the app adds health, readiness and /metrics)."""
    router = APIRouter()
    router.routes.append(Route("/beacon", beacon, methods=["POST"]))

    @router.get("/beacon/schema")
    async def schema(request: Request) -> JSONResponse:
        s = _ctx(request).settings
        doc = beacon_json_schema(raw_max_age_hours=s.metrics_raw_max_age / 3600,
                                 retention_days=s.metrics_retention_days)
        return JSONResponse(doc, headers={"Cache-Control": "public, max-age=300"})

    @router.get("/reports")
    async def list_reports(
        request: Request,
        authorization: Annotated[str, Header()] = "",
        x_api_key: Annotated[str, Header()] = "",
    ) -> dict[str, Any]:
        ctx = _ctx(request)
        check_key(_given_key(authorization, x_api_key), ctx.api_keys)
        s = ctx.settings
        now = ctx.clock()
        return {
            "reports": [{"name": n, "description": spec.description,
                         "columns": list(spec.columns)} for n, spec in REPORTS.items()],
            "period_size": s.metrics_period,
            "latest_period": periods.current(now, s.metrics_period)
            if s.metrics_include_current_period else periods.latest_completed(now,
                                                                              s.metrics_period),
            "k": s.metrics_k,
            "epsilon": s.metrics_epsilon,
        }

    @router.get("/reports/{name}", response_model=None)
    async def one_report(
        name: str,
        request: Request,
        period: Annotated[str | None, Query(max_length=16)] = None,
        format: Annotated[Literal["json", "csv"], Query()] = "json",
        authorization: Annotated[str, Header()] = "",
        x_api_key: Annotated[str, Header()] = "",
    ) -> Response:
        ctx = _ctx(request)
        check_key(_given_key(authorization, x_api_key), ctx.api_keys)
        report = await _report(ctx, name, period)
        if format == "csv":
            return PlainTextResponse(to_csv(report), media_type="text/csv", headers={
                "Content-Disposition": f'attachment; filename="{name}-{report.period}.csv"',
                "X-Parley-Period": report.period,
                "X-Parley-K": str(report.k),
                "X-Parley-Suppressed-Rows": str(report.suppressed.rows),
                "X-Parley-Suppressed-Sessions": "" if report.suppressed.sessions is None
                else str(report.suppressed.sessions),
            })
        return JSONResponse(json.loads(report.model_dump_json()))

    @router.get("/stats.json")
    async def public_stats(
        request: Request, period: Annotated[str | None, Query(max_length=16)] = None,
    ) -> JSONResponse:
        ctx = _ctx(request)
        out: dict[str, Any] = {}
        label = ""
        for name in PUBLIC:
            r = await _report(ctx, name, period)
            label = r.period
            out[name] = json.loads(r.model_dump_json(exclude={"period", "k", "epsilon"}))
        body = {"period": label, "period_size": ctx.settings.metrics_period,
                "k": ctx.settings.metrics_k, "epsilon": ctx.settings.metrics_epsilon,
                "reports": out}
        return JSONResponse(body, headers={"Cache-Control": "public, max-age=60"})

    return router
