"""Rooms' HTTP routes: create and join rooms, lock/unlock, leave, config, health, web client."""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field

from services.common.clientaddr import client_address, is_trusted_proxy
from services.common.credentials import mint_turn_credential
from services.common.hashing import ip_key, room_key
from services.common.publicurl import hostname, page_url, relay_host, websocket_url
from services.common.roomnames import RoomNameError, normalize, random_name
from services.common.roomstate import NotOwner, OwnerAbsent, Recovering, RoomFull, RoomLocked
from services.common.tokens import (
    JoinClaims,
    TokenError,
    issue_join_token,
    issue_sfu_ticket,
    verify_join_token,
)
from services.rooms.bus import (
    announce_lock,
    announce_media_path,
    announce_membership,
    hint_relay_trace,
)
from services.rooms.relays import ice_servers_for
from services.rooms.sfus import TICKET_TTL, wants_sfu
from services.rooms.turnservers import ice_entries

log = logging.getLogger(__name__)
JOINS = Counter("parley_rooms_joins_total", "Join attempts by result.", ["result"])
for _result in ("ok", "rate-limited", "locked", "full", "error"):
    JOINS.labels(_result)  # every result exported from the start, at 0 (rates need a series)
ROOMS_CREATED = Counter("parley_rooms_created_total", "Rooms created with a random name.")
DIAG_FAILURES = Counter("parley_rooms_diag_write_failures_total", "Diagnostic writes failed.")
ICE_REFRESHES = Counter("parley_rooms_ice_refreshes_total",
                        "Fresh ICE servers handed to members whose ICE failed.")
RELAY_REPINS = Counter("parley_rooms_relay_repins_total",
                       "Rooms moved to another relay: theirs was gone, or late while a member "
                       "reported ICE failure (first: a room's first relay).", ["reason"])
NO_RELAY_WARNING = (
    "no TURN relay is available: calls between networks that block direct connections may fail"
)
RECOVERING = "the server is recovering from a restart; try again in a few seconds"
OWNER_ABSENT = "the owner's rights take effect once the owner is in the call"
#: The web client's CSP; `SecurityHeaders` also puts it on /static files and every answer.
WEB_CSP = (
    "default-src 'self'; connect-src 'self' ws: wss: http: https:; img-src 'self' data:; "
    "media-src 'self' blob: mediastream:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HTML_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=(self)",
    "Content-Security-Policy": WEB_CSP,
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JoinRequest(_Body):
    password: str | None = Field(default=None, max_length=256)
    owner_key: str | None = Field(default=None, max_length=64, description=(
        "The room's owner key, when its owner comes back as a new peer (a reload)."))


class LockRequest(_Body):
    owner_key: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class UnlockRequest(_Body):
    owner_key: str = Field(min_length=1, max_length=64)


class LeaveRequest(_Body):
    token: str = Field(min_length=1, max_length=2048)


class MediaRequest(_Body):
    token: str = Field(min_length=1, max_length=2048)


class MediaInfo(BaseModel):
    """How this page's media goes (docs/sfu.md): a mesh, or through the room's SFU with a
    ticket signalling accepts and `slots` receive slots."""

    path: Literal["mesh", "sfu"]
    mesh_max: int
    ticket: str | None = None
    slots: int = 0
class IceRequest(_Body):
    token: str = Field(min_length=1, max_length=2048, description=(
        "The join token of this peer (expired is fine: calls outlast tokens)."))


class IceResponse(BaseModel):
    ice_servers: list[dict[str, Any]]
    ice_transport_policy: Literal["all", "relay"]
    warnings: list[str] = Field(default_factory=list)


class RoomInfo(BaseModel):
    name: str
    capacity: int
    locked: bool


class JoinResponse(BaseModel):
    peer_id: str
    token: str
    signaling_url: str
    ice_servers: list[dict[str, Any]]
    ice_transport_policy: Literal["all", "relay"]
    room: RoomInfo
    owner_key: str | None = None
    warnings: list[str] = Field(default_factory=list)
    media: MediaInfo | None = None


class CreatedRoom(BaseModel):
    name: str
    url: str


def _ctx(request: Request) -> Any:
    return request.app.state.ctx


def _room(name: str) -> str:
    try:
        return normalize(name)
    except RoomNameError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc


def _client(request: Request) -> str:
    ctx = _ctx(request)
    peer = request.client.host if request.client else None
    return client_address(
        peer, request.headers.get("x-forwarded-for"), ctx.settings.trusted_proxies
    )


def _rate_limit(request: Request, ip: str) -> None:
    ctx = _ctx(request)
    if not ctx.limiter.allow(ip_key(ctx.hash_key, ip), now=time.monotonic()):
        JOINS.labels("rate-limited").inc()
        raise HTTPException(status_code=429, detail="too many requests; try again shortly")


_round_robin = itertools.count()


def _signaling_url(request: Request, *, advance: bool = True) -> str:
    """The signalling URL to hand out; several configured are dealt round-robin per join."""
    configured: str = _ctx(request).settings.signaling_url
    if configured:
        urls = [u.strip() for u in configured.split(",") if u.strip()]
        return urls[next(_round_robin) % len(urls)] if advance else urls[0]
    return websocket_url(_ctx(request).settings.public_url)


def _metrics_url(request: Request) -> str | None:
    """`self` (an Ingress or the gateway routes the metrics paths) is this origin's `/`."""
    s = _ctx(request).settings
    configured: str | None = s.metrics_url
    if configured == "self":
        return page_url(s.public_url, "/")
    return configured or None


def _local_address(request: Request) -> str | None:
    """The address of this machine that the browser's connection came in on.

    Behind the single-server gateway (or nginx, Caddy) it is the proxy's
    `X-Parley-Local-Addr`, believed only from a trusted proxy; else this socket's own.
    """
    peer = request.client.host if request.client else ""
    header = request.headers.get("x-parley-local-addr")
    if header and is_trusted_proxy(peer, _ctx(request).settings.trusted_proxies):
        return header.split(",")[-1].strip()
    server = request.scope.get("server")
    return str(server[0]) if server else None


api_router = APIRouter()


@api_router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    ctx = _ctx(request)
    checks = {"nats": ctx.bus.connected, "redis": False}
    try:
        checks["redis"] = bool(await ctx.redis.ping())
    except Exception:
        checks["redis"] = False
    ok = all(checks.values())
    relays = len(ctx.relays.live(now=time.time()))
    sfus = ctx.sfus.counts(now=time.time())["usable"]
    extra = {"turn_servers_up": len(ctx.turn_health.up())} if ctx.turn_health.servers else {}
    return JSONResponse({"ready": ok, **checks, "relays": relays, "sfus": sfus, **extra},
                        status_code=200 if ok else 503)


@api_router.get("/config.json")
async def config(request: Request) -> dict[str, Any]:
    s = _ctx(request).settings
    return {
        "signaling_url": _signaling_url(request, advance=False),
        "metrics_url": _metrics_url(request),
        "retention_days": s.retention_days,
        "force_relay": s.force_relay,
        "capacity": s.room_capacity,
        "security_txt": bool(s.security_contact),
        "version": "0.1.0",
    }


@api_router.post("/api/rooms", status_code=201)
async def create_room(request: Request) -> CreatedRoom:
    _rate_limit(request, _client(request))
    name = random_name()
    ROOMS_CREATED.inc()
    return CreatedRoom(name=name, url=page_url(_ctx(request).settings.public_url, f"/{name}"))


@api_router.post("/api/rooms/{name}/join")
async def join_room(name: str, request: Request, body: JoinRequest | None = None) -> JoinResponse:
    try:
        return await _join(name, request, body)
    except HTTPException:
        raise  # counted under its own result, or a bad name / body (the client's error)
    except Exception:
        JOINS.labels("error").inc()  # Redis or NATS failing under us: the join SLO's errors
        raise


async def _join(name: str, request: Request, body: JoinRequest | None) -> JoinResponse:
    ctx = _ctx(request)
    s = ctx.settings
    room = _room(name)
    ip = _client(request)
    _rate_limit(request, ip)
    rk = room_key(ctx.hash_key, room)
    now = time.time()
    peer_id = secrets.token_urlsafe(9)
    capacity = await _capacity(ctx, rk, now)
    try:
        joined = await ctx.rooms.join(
            rk, peer_id, capacity=capacity, now=now,
            password=body.password if body else None,
            owner_key=body.owner_key if body else None,
        )
    except RoomLocked:
        JOINS.labels("locked").inc()
        raise HTTPException(status_code=403, detail="locked") from None
    except RoomFull:
        JOINS.labels("full").inc()
        raise HTTPException(status_code=409, detail="room is full") from None
    except Recovering:
        JOINS.labels("recovering").inc()
        raise HTTPException(status_code=503, detail=RECOVERING,
                            headers={"Retry-After": "5"}) from None
    await announce_membership(ctx.bus, rk, peer_id, "joined")

    ice_servers, warnings = await _ice_servers(request, rk, ip, now)
    token = issue_join_token(
        ctx.token_key, room=room, room_key=rk, peer_id=peer_id,
        owner=joined.owner_key is not None, ttl=s.join_token_ttl, now=now,
    )
    try:
        await ctx.diag.write(ip=ip, room=room, service="rooms", event="join", now=now)
    except Exception:
        DIAG_FAILURES.inc()
        log.warning("diagnostic record could not be written")
    media = await _media_for(ctx, rk, peer_id, members=joined.members, now=now)
    JOINS.labels("ok").inc()
    return JoinResponse(
        peer_id=peer_id, token=token, signaling_url=_signaling_url(request),
        ice_servers=ice_servers,
        ice_transport_policy="relay" if s.force_relay else "all",
        room=RoomInfo(name=room, capacity=capacity,
                      locked=await ctx.rooms.is_locked(rk)),
        owner_key=joined.owner_key, warnings=warnings, media=media,
    )


async def _capacity(ctx: Any, rk: str, now: float) -> int:
    """The SFU's room capacity when the room is or can go through an SFU, else the mesh's."""
    s = ctx.settings
    path, _ = await ctx.rooms.media(rk)
    if path == "sfu" or ctx.sfus.pick(now=now) is not None:
        return max(int(s.room_capacity), int(s.sfu_room_capacity))
    return int(s.room_capacity)


async def _media_for(ctx: Any, rk: str, peer_id: str, *, members: int,
                     now: float) -> MediaInfo:
    """The room's media path for this peer; switches the room to an SFU when it grows past
    the mesh limit, and re-pins it when its SFU is dead (failover)."""
    s = ctx.settings
    path, pinned = await ctx.rooms.media(rk)
    if not wants_sfu(members=members, mesh_max=s.mesh_max, current=path):
        return MediaInfo(path="mesh", mesh_max=s.mesh_max)
    sfu_id = pinned if pinned and ctx.sfus.alive(pinned, now=now) else None
    if sfu_id is None:
        pick = ctx.sfus.pick(now=now)
        if pick is None:  # no SFU: a new room stays mesh; an SFU room waits for one
            if path == "sfu":
                return MediaInfo(path="sfu", mesh_max=s.mesh_max,
                                 slots=s.sfu_room_capacity - 1)
            return MediaInfo(path="mesh", mesh_max=s.mesh_max)
        sfu_id = await ctx.rooms.pin_sfu(rk, pick.sfu_id, replace=pinned)
        if path != "sfu":
            await announce_media_path(ctx.bus, rk)
    ticket = issue_sfu_ticket(ctx.token_key, room_key=rk, peer_id=peer_id, sfu_id=sfu_id,
                              ttl=TICKET_TTL, now=now)
    return MediaInfo(path="sfu", mesh_max=s.mesh_max, ticket=ticket,
                     slots=s.sfu_room_capacity - 1)


def _member_claims(token_key: str, token: str, rk: str) -> JoinClaims:
    """The claims of a member's join token for the room keyed `rk` (an expired token is
    fine: calls outlast tokens). 401 when it does not verify, 403 for another room's."""
    try:
        claims = verify_join_token(token_key, token, allow_expired=True)
    except TokenError:
        raise HTTPException(status_code=401, detail="invalid token") from None
    if claims.room_key != rk:
        raise HTTPException(status_code=403, detail="token is for another room")
    return claims


@api_router.post("/api/rooms/{name}/media")
async def room_media(name: str, body: MediaRequest, request: Request) -> MediaInfo:
    """A member's media path and SFU ticket: after a `media-path` switch, and on failover."""
    ctx = _ctx(request)
    _rate_limit(request, _client(request))
    rk = room_key(ctx.hash_key, _room(name))
    claims = _member_claims(ctx.token_key, body.token, rk)
    now = time.time()
    members = await ctx.rooms.members(rk, now=now)
    if claims.peer_id not in members:
        raise HTTPException(status_code=403, detail="not a member of this room")
    return await _media_for(ctx, rk, claims.peer_id, members=len(members), now=now)



async def _ice_servers(request: Request, rk: str, ip: str, now: float, *,
                       failing: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """The room's relay as RTCIceServers with fresh TURN credentials, then the external TURN
    servers that are up, and any warning."""
    ctx = _ctx(request)
    s = ctx.settings
    turn_secret = ctx.turn_secret.get()
    relay = await _relay_for_room(ctx, rk, now, failing=failing) if turn_secret else None
    # external TURN servers (an existing coturn) that pass their probe, for every room
    external = ice_entries(ctx.turn_health.up(), ttl=s.turn_credential_ttl, now=now)
    if relay is None:
        servers = ice_servers_for(None, username="", credential="",
                                  stun_urls=[] if external else s.stun_urls)
        return servers + external, [] if external else [NO_RELAY_WARNING]
    cred = mint_turn_credential(turn_secret, ttl=s.turn_credential_ttl, now=now)
    servers = ice_servers_for(
        relay, username=cred.username, credential=cred.password, stun_urls=s.stun_urls,
        # never from the Host header (issue 15 item 6): the public URL's host or nothing
        host=relay_host(relay.public_host, _local_address(request), client=ip,
                        fallback=hostname(s.public_url)),
        room_key=rk,  # the room's worker port, when the relay has them
    )
    await hint_relay_trace(ctx.bus, relay.relay_id, cred.username)
    return servers + external, []


async def _relay_for_room(ctx: Any, rk: str, now: float, *, failing: bool = False) -> Any:
    """The room's relay (`RelayRegistry.choose_for_room`), re-pinning the room when that
    is not the one assigned (another replica may have re-pinned it first: its pick wins)."""
    assigned = await ctx.rooms.assigned_relay(rk)
    choice = ctx.relays.choose_for_room(assigned, now=now, failing=failing)
    if choice is None or choice.relay_id == assigned:
        return choice
    RELAY_REPINS.labels("first" if assigned is None else "failing" if failing else "gone").inc()
    winner = await ctx.rooms.assign_relay(rk, choice.relay_id, replace=assigned)
    return ctx.relays.usable(winner, now=now) or choice


@api_router.post("/api/rooms/{name}/ice")
async def fresh_ice_servers(name: str, body: IceRequest, request: Request) -> IceResponse:
    """Fresh ICE servers for a member whose ICE failed: the room's relay (moved to a
    punctual one when it is late, see `services.rooms.relays`) with new TURN credentials."""
    ctx = _ctx(request)
    room = _room(name)
    ip = _client(request)
    _rate_limit(request, ip)
    rk = room_key(ctx.hash_key, room)
    claims = _member_claims(ctx.token_key, body.token, rk)
    now = time.time()
    if claims.peer_id not in await ctx.rooms.members(rk, now=now):
        raise HTTPException(status_code=410, detail="no longer a member of the room")
    ice_servers, warnings = await _ice_servers(request, rk, ip, now, failing=True)
    ICE_REFRESHES.inc()
    return IceResponse(ice_servers=ice_servers,
                       ice_transport_policy="relay" if ctx.settings.force_relay else "all",
                       warnings=warnings)


@api_router.post("/api/rooms/{name}/lock", status_code=204)
async def lock_room(name: str, body: LockRequest, request: Request) -> Response:
    ctx = _ctx(request)
    _rate_limit(request, _client(request))
    rk = room_key(ctx.hash_key, _room(name))
    try:
        await ctx.rooms.lock(rk, owner_key=body.owner_key, password=body.password,
                             now=time.time())
    except NotOwner:
        raise HTTPException(status_code=403, detail="only the room's owner can lock it") from None
    except OwnerAbsent:
        raise HTTPException(status_code=409, detail=OWNER_ABSENT) from None
    await announce_lock(ctx.bus, rk, locked=True)
    return Response(status_code=204)


@api_router.post("/api/rooms/{name}/unlock", status_code=204)
async def unlock_room(name: str, body: UnlockRequest, request: Request) -> Response:
    ctx = _ctx(request)
    _rate_limit(request, _client(request))
    rk = room_key(ctx.hash_key, _room(name))
    try:
        await ctx.rooms.unlock(rk, owner_key=body.owner_key, now=time.time())
    except NotOwner:
        raise HTTPException(
            status_code=403, detail="only the room's owner can unlock it") from None
    except OwnerAbsent:
        raise HTTPException(status_code=409, detail=OWNER_ABSENT) from None
    await announce_lock(ctx.bus, rk, locked=False)
    return Response(status_code=204)


@api_router.post("/api/rooms/{name}/leave", status_code=204)
async def leave_room(name: str, body: LeaveRequest, request: Request) -> Response:
    ctx = _ctx(request)
    rk = room_key(ctx.hash_key, _room(name))
    claims = _member_claims(ctx.token_key, body.token, rk)
    if await ctx.rooms.leave(rk, claims.peer_id):
        await announce_membership(ctx.bus, rk, claims.peer_id, "left")
    return Response(status_code=204)


def web_router(web_dir: Path) -> APIRouter:
    """Serve the web client: `/static/*` files, and index.html at `/` and `/{room}`."""
    router = APIRouter()
    index = web_dir / "index.html"

    @router.get("/", include_in_schema=False)
    async def home() -> FileResponse:
        return FileResponse(index, headers=HTML_HEADERS)

    def _page(file: str) -> FileResponse:
        path = web_dir / file
        if not path.is_file():
            raise HTTPException(status_code=404, detail="not found")
        return FileResponse(path, headers=HTML_HEADERS)

    @router.get("/privacy", include_in_schema=False)
    async def privacy_page() -> FileResponse:
        return _page("privacy.html")

    @router.get("/stats", include_in_schema=False)
    async def stats_page() -> FileResponse:
        return _page("stats.html")

    @router.get("/{room}", include_in_schema=False)
    async def room_page(room: str) -> FileResponse:
        try:
            normalize(room)
        except RoomNameError:
            raise HTTPException(status_code=404, detail="not found") from None
        return FileResponse(index, headers=HTML_HEADERS)

    router.routes.append(_static_mount(web_dir))
    return router


def _static_mount(web_dir: Path) -> Any:
    from starlette.routing import Mount

    return Mount("/static", app=StaticFiles(directory=web_dir, check_dir=False), name="static")
