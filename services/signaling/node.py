"""The transport: websockets in, sessions' effects carried out against Redis and NATS.

One `Node` per process. Each socket gets a `Session` (the protocol, sans-I/O) and a
`Connection` (a bounded outbox drained by its own writer task, so that fan-out never awaits
a socket). A timer task ticks the sessions (join and idle timeouts) and, every heartbeat,
renews presence for the local peers, reaps the peers whose grace is over, and checks that
every local peer still holds its slot in the room: a socket whose membership ended (left
through rooms, expired) is closed with 4410, so a room never has more sockets than slots.

If Redis lost its data (its epoch changed, see `services.common.roomstate`), those checks
would close every socket: instead the node puts back what it holds (each local room's
members and meta, kept from the last heartbeat, and its peers' presence) and the calls go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal

import redis.asyncio as aioredis
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import TypeAdapter, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from services.common.clientaddr import client_address
from services.common import subjects
from services.common.messages import (
    MediaPathEvent,
    MembershipEvent,
    RoomLockEvent,
    SfuSessionReply,
    SfuSessionRequest,
)
from services.common.tokens import TokenError, verify_sfu_ticket
from services.common.ratelimit import RateLimiter
from services.common.roomstate import RoomState
from services.common.telemetry import private_span, traceparent_context
from services.signaling import metrics as m
from services.signaling import protocol as p
from services.signaling.bus import PubSub, RoomBus
from services.signaling.census import Census, census
from services.signaling.errors import (
    JoinRejected,
    MembershipEnded,
    NoPlace,
    PresenceError,
    ResumeFailed,
    Unauthorized,
)
from services.signaling.origin import origin_allowed
from services.signaling.presence import Presence, PresenceRecord, RedisPresence
from services.signaling.resume import ResumeOutcome, hash_resume_key, new_resume_key
from services.signaling.routing import BusHeader, Hub, pack, unpack
from services.signaling.session import (
    Authorize,
    Close,
    Depart,
    Effect,
    Publish,
    Send,
    Session,
    SfuForward,
)
from services.signaling.settings import SignalingSettings

log = logging.getLogger(__name__)
# At most 123 bytes (RFC 6455 §5.5): the words the page shows.
ORIGIN_REFUSED_REASON: Final[str] = (
    "This page's address is not the server's public address (Origin refused)."
)

TICK_SECONDS: Final[float] = 1.0
HEARTBEAT_SLICE: Final[int] = 200  # rooms per Redis pipeline
FLUSH_SECONDS: Final[float] = 1.0  # how long a closing socket may take to write its close
MAX_MEMBERSHIP_EVENT_BYTES: Final[int] = 1024
_tracer = trace.get_tracer("parley.signaling")

# What rooms publishes on a room's members subject: slot, lock and media-path changes.
_ROOM_EVENT: Final[TypeAdapter[MembershipEvent | RoomLockEvent | MediaPathEvent]] = \
    TypeAdapter(MembershipEvent | RoomLockEvent | MediaPathEvent)
SFU_TIMEOUT: Final[float] = 5.0
SfuRequester = Callable[..., Awaitable[bytes]]


class Connection:
    """One accepted websocket: a bounded outbox and, while it has frames, a writer task.

    The writer exists only while there is something to write, so an idle socket costs no
    task; fan-out only appends to the outbox and never waits for a socket.
    """

    def __init__(self, ws: WebSocket, *, max_frames: int) -> None:
        self.conn_id = secrets.token_urlsafe(12)
        self.ws = ws
        self.max_frames = max_frames
        self.queue: deque[str] = deque()
        self.held = False  # while joining: queue frames, write none until the welcome is first
        self.close_with: tuple[int, str] | None = None
        self.writer: asyncio.Task[None] | None = None
        self.close_sent = False
        self.trace: otel_context.Context | None = None  # the join's span, once it carried one
        self.resume_hash: str | None = None  # what presence holds for this socket's peer

    def offer(self, frame: str) -> bool:
        """Queue a frame without waiting; a socket too slow to keep up is dropped (1013)."""
        if self.close_with is not None:
            return False
        if len(self.queue) >= self.max_frames:
            self.queue.clear()
            m.SLOW_CONSUMERS.inc()
            self.request_close(p.CloseCode.TRY_AGAIN, "too slow; reconnect and resume")
            return False
        self.queue.append(frame)
        self._wake()
        return True

    def kick(self, code: int, reason: str) -> None:
        self.request_close(code, reason)

    def request_close(self, code: int, reason: str) -> None:
        """Close after the frames already queued (an error before its close)."""
        if self.close_with is None:
            self.close_with = (code, reason)
            m.CLOSES.labels(str(code)).inc()
            self.held = False
            self._wake()

    def release(self, first: str | None = None) -> None:
        """End the hold, putting `first` (the welcome) ahead of what was queued meanwhile."""
        if first is not None:
            self.queue.appendleft(first)
        self.held = False
        self._wake()

    def _wake(self) -> None:
        if not self.held and (self.writer is None or self.writer.done()):
            self.writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        try:
            while self.queue and not self.held:
                await self.ws.send_text(self.queue.popleft())
            if self.close_with is not None and not self.held and not self.close_sent:
                self.close_sent = True
                await self.ws.close(*self.close_with)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return  # the socket is gone; the reader sees the disconnect
        except Exception as exc:  # uvicorn's ClientDisconnected and friends
            log.debug("writer ended: %s", type(exc).__name__)

    async def flush(self) -> None:
        """Give a pending close (and the frames before it) FLUSH_SECONDS to go out."""
        writer = self.writer
        if writer is not None and not writer.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(writer), timeout=FLUSH_SECONDS)

    def abort(self) -> None:
        """Stop writing (the socket is gone)."""
        if self.writer is not None and not self.writer.done():
            self.writer.cancel()


class Node:
    """Every socket, room subscription and timer of one signalling process."""

    def __init__(self, *, settings: SignalingSettings, token_key: str, bus: PubSub,
                 redis: aioredis.Redis, presence: Presence | None = None,
                 sfu_request: SfuRequester | None = None) -> None:
        self.settings = settings
        self.sfu_request = sfu_request
        self.token_key = token_key
        self.limits = settings.limits()
        self.replica = settings.replica_id
        self.redis = redis
        self.presence: Presence = presence or RedisPresence(redis, settings.deadlines())
        self.roomstate = RoomState(redis, member_ttl=settings.member_ttl,
                                   recovery_grace=settings.redis_recovery_grace)
        # each local room's meta (owner, lock, password hash) as last read: put back after
        # Redis lost its data, so a locked room stays locked and keeps its owner
        self._meta: dict[str, dict[str, str]] = {}
        self.hub = Hub()
        self.roombus = RoomBus(bus, self._on_bus, self._on_membership)
        self.sessions: dict[Connection, Session] = {}
        self.draining = False
        # new sockets per client address, in memory only, under a key made for this process
        self._source_key = os.urandom(16)
        self._connects = RateLimiter(rate=settings.connect_rate, burst=settings.connect_burst)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._in = {t: m.MESSAGES_IN.labels(t) for t in (*p.CLIENT_TYPES, "invalid")}

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        m.watch_gc()
        with contextlib.suppress(Exception):  # remember this Redis's epoch (fault 4)
            await self.roomstate.sync_epoch()
        self._spawn(self._timers())
        self._spawn(self._renew_members())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Close every socket with 1001 (clients resume elsewhere); wait for them to end."""
        self.draining = True
        for conn, session in list(self.sessions.items()):
            await self._run(conn, session, session.going_away())
        deadline = time.monotonic() + self.settings.drain_timeout
        while self.sessions and time.monotonic() < deadline:  # noqa: ASYNC110 - bounded poll
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        await self.drain()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task

    async def ready(self) -> bool:
        """NATS connected and Redis answering (and not draining)."""
        connected = getattr(self.roombus.bus, "connected", True)
        try:
            pong = await asyncio.wait_for(self.redis.ping(), timeout=2.0)
        except Exception:
            return False
        return bool(connected and pong and not self.draining)

    # --- one socket ----------------------------------------------------------------------

    async def serve(self, ws: WebSocket) -> None:
        """Run one websocket from handshake to close."""
        if self.draining:
            await ws.close(code=1008)  # before accept: an HTTP 403
            return
        if not origin_allowed(ws.headers.get("origin"), ws.headers.get("host"),
                              self.settings.origins()):
            # Accepted only to be closed at once with a reason the page can show (a refused
            # handshake reaches a browser as a bare 1006); nothing from it is ever read.
            m.ERRORS.labels("origin").inc()
            log.info("socket refused: its Origin is not this site's "
                     "(PARLEY_PUBLIC_URL / PARLEY_ALLOWED_ORIGINS)")
            await ws.accept()
            await ws.close(code=p.CloseCode.ORIGIN_REFUSED, reason=ORIGIN_REFUSED_REASON)
            return
        if not self._connects.allow(self._source(ws), now=time.monotonic()):
            m.ERRORS.labels("connect-rate").inc()
            await ws.close(code=1008)  # an HTTP 403 before the handshake completes
            return
        await ws.accept()
        m.ACCEPTED.inc()
        conn = Connection(ws, max_frames=self.settings.send_queue_frames)
        session = Session(limits=self.limits, token_key=self.token_key, now=time.time())
        self.sessions[conn] = session
        m.CONNECTIONS.inc()
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("text")
                if data is None:
                    data = message.get("bytes")
                if data is None:
                    continue
                effects = session.receive(data, now=time.time())
                self._in[session.last_type].inc()
                if effects:
                    await self._run(conn, session, effects)
        except (WebSocketDisconnect, RuntimeError):
            pass
        except Exception as exc:  # Redis or NATS failing under us: the client may resume
            log.warning("socket failed: %s", type(exc).__name__)
            conn.request_close(1011, "internal error; reconnect and resume")
        finally:
            await self._finish(conn, session)

    def _source(self, ws: WebSocket) -> str:
        """An opaque per-process key of the client address (never the address itself)."""
        peer = ws.client.host if ws.client else None
        addr = client_address(peer, ws.headers.get("x-forwarded-for"),
                              self.settings.trusted_proxies)
        return hmac.new(self._source_key, addr.encode(), hashlib.sha256).hexdigest()[:24]

    async def _run(self, conn: Connection, session: Session, effects: list[Effect]) -> None:
        for eff in effects:
            if isinstance(eff, Send):
                if eff.error is not None:
                    m.ERRORS.labels(eff.error).inc()
                conn.offer(eff.frame)
            elif isinstance(eff, Publish):
                if conn.trace is None:
                    await self._publish(conn, session, eff)
                    continue
                with private_span(_tracer, "signaling publish", context=conn.trace,
                                  attributes={"parley.message.type": eff.type}):
                    await self._publish(conn, session, eff)
            elif isinstance(eff, Close):
                if eff.code >= p.CloseCode.BAD_JOIN:  # refused: one line with the reason
                    log.info("socket refused (%d): %s", eff.code, eff.reason)
                conn.request_close(eff.code, eff.reason)
            elif isinstance(eff, Authorize):
                parent = traceparent_context(eff.traceparent)
                if parent is None:
                    await self._join(conn, session, eff)
                    continue
                # the browser's join trace: this join and what the socket sends later
                with private_span(_tracer, "signaling join", context=parent,
                                  kind=SpanKind.SERVER,
                                  attributes={"parley.resume": eff.resume is not None}) as span:
                    # later publishes join it only while it is recorded (an exporter is on)
                    conn.trace = trace.set_span_in_context(span) if span.is_recording() else None
                    await self._join(conn, session, eff)
            elif isinstance(eff, Depart):
                await self._depart(conn, session)
            elif isinstance(eff, SfuForward):
                self._spawn(self._sfu(conn, session, eff.request))

    async def _sfu(self, conn: Connection, session: Session, req: p.SfuRequest) -> None:
        """Forward a page's offer or slot map to its room's SFU; answer with the SFU's reply.

        The ticket (from rooms) names the SFU and must be for this socket's room and peer.
        The offer goes without its candidate lines: the SFU is ICE-lite and never needs a
        browser's addresses, so none cross the bus.
        """
        def refuse(message: str) -> None:
            m.ERRORS.labels("sfu-unavailable").inc()
            conn.offer(p.error_frame("sfu-unavailable", message, ref="sfu"))

        try:
            ticket = verify_sfu_ticket(self.token_key, req.ticket)
        except TokenError:
            refuse("invalid or expired ticket; ask rooms for a new one")
            return
        if ticket.room_key != session.room_key or ticket.peer_id != session.peer_id:
            refuse("the ticket is for another room or peer")
            return
        if self.sfu_request is None:
            refuse("no SFU on this server")
            return
        sdp = None
        if req.description is not None:
            if req.description.type != "offer":
                refuse("only offers go to the SFU")
                return
            sdp = "".join(line for line in req.description.sdp.splitlines(keepends=True)
                          if not line.startswith("a=candidate:"))
        body = SfuSessionRequest(room_key=ticket.room_key, peer_id=ticket.peer_id, sdp=sdp,
                                 subscribe=req.subscribe)
        try:
            data = await self.sfu_request(subjects.sfu_session(ticket.sfu_id),
                                          body.model_dump_json().encode(),
                                          timeout=SFU_TIMEOUT)
            reply = SfuSessionReply.model_validate_json(data)
        except (TimeoutError, ValidationError, OSError) as exc:
            log.info("sfu request failed: %s", type(exc).__name__)
            refuse("the SFU did not answer")
            return
        except Exception as exc:  # NATS gone: the page retries through rooms
            log.warning("sfu request failed: %s", type(exc).__name__)
            refuse("the SFU did not answer")
            return
        if not reply.ok:
            refuse(f"the SFU refused: {reply.error}")
            return
        desc = {"type": "answer", "sdp": reply.sdp} if reply.sdp else None
        conn.offer(p.encode(p.SfuOut(description=desc)))

    async def _publish(self, conn: Connection, session: Session, eff: Publish) -> None:
        me, rk = session.peer_id, session.room_key
        assert me is not None and rk is not None
        if eff.media is not None:
            try:
                await self.presence.set_media(rk, me, conn=conn.conn_id, media=eff.media)
            except Exception as exc:  # Redis away: the broadcast still goes; the view is
                log.warning("media state not recorded: %s", type(exc).__name__)  # put back
        header = BusHeader(kind="peer" if eff.to else "room", src=me, to=eff.to,
                           event="media" if eff.media is not None else None, media=eff.media,
                           type=eff.type, sent=time.time())
        data = pack(header, eff.frame)
        if eff.to is None:
            await self.roombus.publish_room(rk, data)
        else:
            await self.roombus.publish_peer(rk, eff.to, data)

    async def _join(self, conn: Connection, session: Session, auth: Authorize) -> None:
        claims, now = auth.claims, time.time()
        rk, peer = claims.room_key, claims.peer_id
        key = new_resume_key()
        try:
            resumed = await self._admit(conn, auth, key, now)
        except JoinRejected as exc:
            await self._run(conn, session, session.reject(exc))
            return
        conn.held = True
        conn.resume_hash = hash_resume_key(key)
        await self.roombus.acquire(rk)
        _, previous = self.hub.add(rk, peer, conn)
        # From here on the socket counts as joined, so that _finish undoes all of this.
        session.joined(peer_id=peer, room_key=rk, peers=self.hub.view(rk))
        if previous is not None and previous is not conn:
            previous.kick(p.CloseCode.REPLACED, "replaced by a resumed socket")
        m.PEERS.inc()
        m.ROOMS.set(len(self.hub.rooms))
        self._spawn(self._refresh_meta([rk]))
        for gone in await self.presence.reap(rk, now=now):
            await self._announce_left(rk, gone, "timeout")
        snap = await self.presence.snapshot(rk, now=now)
        members = await self.roomstate.members(rk, now=now)
        # a peer that left through rooms while its socket was away keeps its presence until
        # the reaper; its slot is gone, and a welcome (a resume) must not list it
        snap = {pid: rec for pid, rec in snap.items() if pid in members or pid == peer}
        pending = [pid for pid in members if pid not in snap and pid != peer]
        self.hub.sync_view(rk, {pid: rec.media for pid, rec in snap.items()}, pending)
        welcome = p.Welcome(
            peer_id=peer, resume_key=key, ping_interval=self.settings.ping_interval,
            resumed=resumed, peers=[p.PeerInfo(peer_id=pid, media=rec.media)
                                    for pid, rec in snap.items() if pid != peer],
            pending=sorted(pending), locked=await self.roomstate.is_locked(rk))
        conn.release(first=p.encode(welcome))
        if resumed:  # close the socket it replaces, on whichever replica holds it
            header = BusHeader(kind="kick", src=peer, to=peer, conn=conn.conn_id, type="kick",
                               sent=time.time())
            await self.roombus.publish_peer(rk, peer, pack(header, ""))
        else:
            media = snap[peer].media if peer in snap else auth.media
            header = BusHeader(kind="room", src=peer, event="joined", media=media,
                               type="peer-joined", sent=time.time())
            frame = p.encode(p.PeerJoined(peer_id=peer, media=media))
            await self.roombus.publish_room(rk, pack(header, frame))

    async def _admit(self, conn: Connection, auth: Authorize, key: str, now: float) -> bool:
        """Enter the peer into presence; True if it resumed. Raises JoinRejected."""
        rk, peer = auth.claims.room_key, auth.claims.peer_id
        if auth.resume is not None:
            res = await self.presence.resume(
                rk, peer, presented_key=auth.resume.key, conn=conn.conn_id,
                replica=self.replica, new_hash=hash_resume_key(key), now=now)
            m.RESUMES.labels(res.outcome.value).inc()
            if res.outcome is ResumeOutcome.GONE:
                raise ResumeFailed("session expired; join again")
            if res.outcome is ResumeOutcome.BAD_KEY:
                raise ResumeFailed("wrong resume key")
            if not await self.roomstate.renew(rk, peer, now=now):
                # its slot ended while it was away (left through rooms, expired): no way back
                if await self.presence.remove(rk, peer, conn=conn.conn_id):
                    await self._announce_left(rk, peer, "left")
                raise MembershipEnded("membership ended; join again through rooms")
            return True
        if not await self.roomstate.renew(rk, peer, now=now):
            raise NoPlace("not a member of the room; join again")
        record = PresenceRecord(conn=conn.conn_id, replica=self.replica, media=auth.media,
                                resume=hash_resume_key(key))
        if not await self.presence.attach(rk, peer, record, now=now):
            raise Unauthorized("peer already connected; resume it instead")
        return False

    async def _depart(self, conn: Connection, session: Session) -> None:
        me, rk = session.peer_id, session.room_key
        if me is None or rk is None:
            return
        if await self.presence.remove(rk, me, conn=conn.conn_id):
            await self._announce_left(rk, me, "left")

    async def _announce_left(self, rk: str, peer: str, reason: str) -> None:
        frame = p.encode(p.PeerLeft(peer_id=peer, reason="left" if reason == "left"
                                    else "timeout"))
        header = BusHeader(kind="room", src=peer, event="left", type="peer-left",
                           sent=time.time())
        # the slot first: a heartbeat in between must not see a member missing from the view
        await self.roomstate.leave(rk, peer)
        await self.roombus.publish_room(rk, pack(header, frame))

    async def _finish(self, conn: Connection, session: Session) -> None:
        del self.sessions[conn]
        m.CONNECTIONS.dec()
        me, rk = session.peer_id, session.room_key
        try:
            if me is not None and rk is not None:
                if not session.departed:  # dropped: the grace starts, nobody is told yet
                    await self.presence.detach(rk, me, conn=conn.conn_id, now=time.time())
                if self.hub.remove(rk, me, conn):
                    self._meta.pop(rk, None)
                m.PEERS.dec()
                m.ROOMS.set(len(self.hub.rooms))
                await self.roombus.release(rk)
        except Exception as exc:
            log.warning("cleanup after a socket failed: %s", type(exc).__name__)
        finally:
            if conn.close_with is not None:
                await conn.flush()
            conn.abort()

    # --- the bus -------------------------------------------------------------------------

    def _on_bus(self, rk: str, data: bytes) -> None:
        try:
            header, frame = unpack(data)
        except PresenceError:
            log.warning("dropped a bus message that is not ours")
            return
        delivery = self.hub.deliver(rk, header, frame)
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute("parley.delivered", delivery.delivered)
            span.set_attribute("parley.message.type", delivery.type)
        if delivery.delivered:
            m.MESSAGES_OUT.labels(delivery.type).inc(delivery.delivered)
            m.FANOUT.observe(max(0.0, time.time() - header.sent))

    def _on_membership(self, rk: str, data: bytes) -> None:
        """Rooms took or released a slot of a room this replica holds sockets of."""
        if len(data) > MAX_MEMBERSHIP_EVENT_BYTES:
            return
        try:
            event = _ROOM_EVENT.validate_json(data)
        except ValidationError:
            log.warning("dropped a malformed membership event")
            return
        if isinstance(event, RoomLockEvent):
            self._spawn(self._lock_changed(rk, locked=event.locked))
            return
        if isinstance(event, MediaPathEvent):
            self.hub.broadcast(rk, p.encode(p.MediaPathOut(path=event.path)))
            return
        if event.event == "joined":
            if self.hub.add_pending(rk, event.peer_id):
                self.hub.broadcast(rk, p.encode(p.PeerPending(peer_id=event.peer_id)))
            return
        self._spawn(self._end_memberships(rk, [event.peer_id], reason="left"))

    async def _end_memberships(self, rk: str, peers: list[str], *,
                               reason: Literal["left", "timeout"]) -> None:
        """These peers no longer hold a slot: close their local sockets (4410), and tell the
        local sockets about those that were pending here (they never had a socket)."""
        room = self.hub.rooms.get(rk)
        if room is None:
            return
        for peer in peers:
            sink = room.sinks.get(peer)
            session = self.sessions.get(sink) if isinstance(sink, Connection) else None
            if isinstance(sink, Connection) and session is not None:
                try:
                    await self._run(sink, session, session.membership_ended())
                except Exception as exc:  # close anyway; the reaper ends its presence
                    log.warning("departure after a membership ended failed: %s",
                                type(exc).__name__)
                    sink.request_close(p.CloseCode.MEMBERSHIP_ENDED, "membership ended")
            elif self.hub.drop_pending(rk, peer):
                self.hub.broadcast(rk, p.encode(p.PeerLeft(peer_id=peer, reason=reason)))

    # --- timers --------------------------------------------------------------------------

    async def _timers(self) -> None:
        next_beat = 0.0
        while True:
            started = time.monotonic()
            await asyncio.sleep(TICK_SECONDS)
            m.LOOP_LAG.observe(max(0.0, time.monotonic() - started - TICK_SECONDS))
            now = time.time()
            for conn, session in list(self.sessions.items()):
                effects = session.tick(now)
                if effects:
                    await self._run(conn, session, effects)
            if self.hub.rooms and now < next_beat:
                # every tick, not every heartbeat: rooms stays closed only for the recovery
                # grace, so put the rooms back within a second of Redis answering again
                try:
                    await self._recover_if_lost(now)
                except Exception as exc:
                    log.debug("redis epoch not checked: %s", type(exc).__name__)
            if now >= next_beat:
                next_beat = now + self.settings.heartbeat_interval
                try:
                    await self._heartbeat(now)
                except Exception as exc:
                    log.warning("presence heartbeat failed: %s", type(exc).__name__)

    async def _heartbeat(self, now: float) -> None:
        await self._recover_if_lost(now)
        # In slices: one pipeline of thousands of rooms would hold the loop for a while.
        keys = list(self.hub.rooms)
        counted = Census()
        for i in range(0, len(keys), HEARTBEAT_SLICE):
            rooms = {rk: self.hub.local_peers(rk) for rk in keys[i:i + HEARTBEAT_SLICE]}
            beat = await self.presence.heartbeat(rooms, now=now)
            if beat.lost and await self._recover_if_lost(now):
                return  # not lost: Redis lost them; put back now
            for rk, peers in beat.reaped.items():
                m.REAPED.inc(len(peers))
                for peer in peers:
                    await self._announce_left(rk, peer, "timeout")
            for rk, peers in beat.lost.items():
                # The others were told this peer left (we could not renew it in time):
                # make its client join again rather than talk to a room that lost it.
                for peer in peers:
                    sink = self.hub.rooms[rk].sinks.get(peer) if rk in self.hub.rooms else None
                    if sink is not None:
                        sink.kick(p.CloseCode.RESUME_FAILED, "session expired; join again")
            counted += census(rooms, await self._check_members(rooms, now))
        m.ROOMS_IN_PROGRESS.set(counted.rooms)
        m.CALLS_IN_PROGRESS.set(counted.calls)

    async def _check_members(self, rooms: dict[str, list[str]], now: float
                             ) -> dict[str, set[str]]:
        """Close local sockets whose slot ended; forget pending slots that lapsed.

        Returns:
            room key -> its members (any replica), as room state has them.
        """
        members = await self.roomstate.members_many(list(rooms), now=now)
        if any(peer not in members[rk] for rk in rooms for peer in rooms[rk]) \
                and await self._recover_if_lost(now):
            # Redis lost its data and this replica just put its rooms back: nobody ended
            return {rk: set(peers) for rk, peers in rooms.items()}
        await self._refresh_meta(list(rooms))
        for rk, live in members.items():
            gone = [peer for peer in rooms[rk] if peer not in live]
            if gone:
                await self._end_memberships(rk, gone, reason="timeout")
            for peer in self.hub.prune_pending(rk, live):
                self.hub.broadcast(rk, p.encode(p.PeerLeft(peer_id=peer, reason="timeout")))
        return members

    async def _renew_members(self) -> None:
        """Keep the slots of local peers alive (`member_ttl`); close those that ended."""
        while True:
            await asyncio.sleep(self.settings.member_renew_interval)
            now = time.time()
            try:
                await self._recover_if_lost(now)
                for rk in list(self.hub.rooms):
                    gone = await self.roomstate.renew_many(rk, self.hub.local_peers(rk),
                                                           now=now)
                    if gone and await self._recover_if_lost(now):
                        break
                    if gone:
                        await self._end_memberships(rk, gone, reason="timeout")
            except Exception as exc:
                log.warning("membership renewal failed: %s", type(exc).__name__)

    # --- Redis lost its data -------------------------------------------------------------

    async def _lock_changed(self, rk: str, *, locked: bool) -> None:
        """Copy the room's new lock first, then tell its local sockets: a member who sees
        the lock knows this replica would put it back after a loss."""
        await self._refresh_meta([rk])
        self.hub.broadcast(rk, p.encode(p.RoomStateOut(locked=locked)))

    async def _refresh_meta(self, rks: list[str]) -> None:
        """Keep a copy of these local rooms' meta (an empty read never replaces a copy)."""
        try:
            found = await self.roomstate.meta_many([rk for rk in rks if rk in self.hub.rooms])
        except Exception as exc:
            log.debug("room meta not read: %s", type(exc).__name__)
            return
        for rk, meta in found.items():
            if meta.get("owner") and rk in self.hub.rooms:
                self._meta[rk] = meta

    async def _recover_if_lost(self, now: float) -> bool:
        """If Redis lost its data since the last look, put back what this replica holds.

        For each local room: its meta as last read and the members whose sockets are here
        (one script, meta first: a room never has members without its lock), then their
        presence. Returns True if Redis had lost its data.
        """
        lost, _ = await self.roomstate.sync_epoch()
        if not lost:
            return False
        rooms = members = 0
        for rk in list(self.hub.rooms):
            peers = [(peer, sink) for peer, sink in self.hub.rooms[rk].sinks.items()
                     if isinstance(sink, Connection) and sink.resume_hash is not None]
            if not peers:
                continue
            await self.roomstate.restore(rk, meta=self._meta.get(rk, {}),
                                         peers=[peer for peer, _ in peers], now=now)
            view = self.hub.view(rk)
            for peer, conn in peers:
                assert conn.resume_hash is not None
                record = PresenceRecord(conn=conn.conn_id, replica=self.replica,
                                        media=view.get(peer, p.MediaState()),
                                        resume=conn.resume_hash)
                await self.presence.attach(rk, peer, record, now=now)
            rooms, members = rooms + 1, members + len(peers)
        m.ERRORS.labels("redis-lost").inc()
        log.warning("redis lost its data: put back %d members of %d rooms", members, rooms)
        return True
