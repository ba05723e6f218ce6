"""One participant's websocket, as a sans-I/O state machine.

`Session.receive(frame, now=)` takes one client frame and returns effects for the transport
to carry out: frames to send back, messages to publish to the room or to one peer, a join
to authorise against presence, a departure, a close. No socket, no clock, no Redis here:
the transport runs the effects and reports the join's outcome back with `joined()` or
`reject()`.

States: AWAITING_JOIN → JOINING → JOINED → CLOSED (any state may go to CLOSED).
"""

from __future__ import annotations

import enum
from collections.abc import Container
from dataclasses import dataclass
from typing import Literal, TypeAlias

from services.common.roomnames import RoomNameError, normalize
from services.common.tokens import JoinClaims, TokenError, TokenExpired, verify_join_token
from services.signaling import protocol as p
from services.signaling.errors import (
    BadJoin,
    JoinRejected,
    ProtocolError,
    TooLarge,
    Unauthorized,
    WrongRoom,
)
from services.signaling.ratelimit import (
    COST_BAD_MESSAGE,
    COST_RATE_LIMITED,
    COST_TOO_LARGE,
    Limiter,
)



@dataclass(frozen=True, slots=True)
class Limits:
    """The per-connection limits and timers (from `SignalingSettings`)."""

    max_message_bytes: int = p.DEFAULT_MAX_MESSAGE_BYTES
    rate: float = 50.0
    burst: float = 200.0
    abuse_rate: float = 1.0
    abuse_burst: float = 50.0
    join_timeout: float = 10.0
    idle_timeout: float = 45.0
    ping_interval: float = 15.0


# --- effects -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send this (encoded) frame to this client (`error`: its error code, if an error)."""

    frame: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Close:
    """Close this socket with `code` and `reason`."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Authorize:
    """The token is good: join (or resume) the peer in presence, then call back."""

    claims: JoinClaims
    resume: p.ResumeRequest | None
    media: p.MediaState
    traceparent: str | None = None


@dataclass(frozen=True, slots=True)
class Publish:
    """Publish `frame` to the room (`to` is None: everyone but me) or to peer `to`.

    `media` is set when the frame changes my media state (presence must record it).
    """

    frame: str
    type: str
    to: str | None = None
    media: p.MediaState | None = None


@dataclass(frozen=True, slots=True)
class Depart:
    """The peer left on purpose: remove it from presence and announce `peer-left`."""


@dataclass(frozen=True, slots=True)
class SfuForward:
    """Forward this request to the SFU its ticket names, and answer the client."""

    request: p.SfuRequest


Effect: TypeAlias = Send | Close | Authorize | Publish | Depart | SfuForward


class State(enum.Enum):
    AWAITING_JOIN = "awaiting-join"
    JOINING = "joining"
    JOINED = "joined"
    CLOSED = "closed"


def authenticate(join: p.Join, *, token_key: str, now: float) -> JoinClaims:
    """Check a join's token against its room name.

    A resume may present an expired token (it was valid when the call began); the resume
    key, checked against presence, is what proves the session then.

    Raises:
        BadJoin: the room name is not a valid name.
        Unauthorized: the token is invalid, expired (fresh joins), or names another peer.
        WrongRoom: the token was issued for another room.
    """
    try:
        claims = verify_join_token(token_key, join.token, now=now)
    except TokenExpired as exc:
        if join.resume is None:
            raise Unauthorized("token expired") from exc
        try:
            claims = verify_join_token(token_key, join.token, allow_expired=True)
        except TokenError as exc2:
            raise Unauthorized("invalid token") from exc2
    except TokenError as exc:
        raise Unauthorized("invalid token") from exc
    try:
        room = normalize(join.room)
    except RoomNameError as exc:
        raise BadJoin("invalid room name") from exc
    try:
        token_room = normalize(claims.room)
    except RoomNameError as exc:
        raise Unauthorized("invalid token") from exc
    if room != token_room:
        raise WrongRoom("token is for another room")
    if join.resume is not None and join.resume.peer_id != claims.peer_id:
        raise Unauthorized("resume peer id does not match the token")
    return claims


class Session:
    """The protocol state of one websocket."""

    def __init__(self, *, limits: Limits, token_key: str, now: float) -> None:
        self.limits = limits
        self.token_key = token_key
        self.state = State.AWAITING_JOIN
        self.created = now
        self.last_rx = now
        self.limiter = Limiter.create(rate=limits.rate, burst=limits.burst,
                                      abuse_rate=limits.abuse_rate,
                                      abuse_burst=limits.abuse_burst, now=now)
        self.peer_id: str | None = None
        self.room_key: str | None = None
        self.peers: Container[str] = ()
        self.departed = False
        self.close_code: int | None = None
        self.last_type = "invalid"  # type of the last frame received (for metrics)

    # --- input ---------------------------------------------------------------------------

    def receive(self, frame: str | bytes, *, now: float) -> list[Effect]:
        """Handle one frame from the client; return what to do."""
        self.last_type = "invalid"
        if self.state is State.CLOSED:
            return []
        self.last_rx = now
        if not self.limiter.allow(now):
            return self._violation(now, COST_RATE_LIMITED, "rate-limited",
                                   "too many messages; slow down", None, p.CloseCode.ABUSE,
                                   "rate limit exceeded")
        try:
            msg = p.parse_client(frame, max_bytes=self.limits.max_message_bytes)
        except TooLarge as exc:
            return self._violation(now, COST_TOO_LARGE, "too-large", exc.message, None,
                                   p.CloseCode.TOO_BIG, "messages too big")
        except ProtocolError as exc:
            return self._violation(now, COST_BAD_MESSAGE, exc.code, exc.message, exc.ref,
                                   p.CloseCode.ABUSE, "too many bad messages")
        self.last_type = msg.type
        if isinstance(msg, p.Ping):
            return [Send(p.PONG_FRAME)]
        if self.state is State.AWAITING_JOIN:
            return self._before_join(msg, now)
        if self.state is State.JOINING:
            return self._violation(now, COST_BAD_MESSAGE, "not-joined", "wait for welcome",
                                   msg.type, p.CloseCode.ABUSE, "too many bad messages")
        return self._joined(msg, now)

    def _violation(self, now: float, cost: float, error: p.ErrorCode, message: str,
                   ref: str | None, code: int, reason: str) -> list[Effect]:
        """Answer with an error, or close when the client is past its tolerance."""
        if self.limiter.violation(now, cost):
            return [Send(p.error_frame(error, message, ref=ref), error)]
        return self._close(code, reason)

    def _close(self, code: int, reason: str) -> list[Effect]:
        self.state = State.CLOSED
        self.close_code = code
        return [Close(code, reason)]

    def _before_join(self, msg: p.ClientMessage, now: float) -> list[Effect]:
        if isinstance(msg, p.Leave):
            return self._close(p.CloseCode.NORMAL, "bye")
        if not isinstance(msg, p.Join):
            return self._violation(now, COST_BAD_MESSAGE, "not-joined", "send join first",
                                   msg.type, p.CloseCode.ABUSE, "too many bad messages")
        try:
            claims = authenticate(msg, token_key=self.token_key, now=now)
        except JoinRejected as exc:
            return self.reject(exc)
        self.state = State.JOINING
        return [Authorize(claims, msg.resume, msg.media or p.MediaState(), msg.traceparent)]

    def _joined(self, msg: p.ClientMessage, now: float) -> list[Effect]:
        me = self.peer_id
        assert me is not None
        if isinstance(msg, p.Signal):
            if msg.to == me or msg.to not in self.peers:
                return self._violation(now, 0.0, "unknown-peer", "no such peer in the room",
                                       "signal", p.CloseCode.ABUSE, "")
            out = p.SignalOut.model_construct(from_=me, data=msg.data.wire())
            return [Publish(p.encode(out), "signal", to=msg.to)]
        if isinstance(msg, p.MediaStateUpdate):
            media = msg.media()
            # The name rides along to the room only: presence keeps the media, not the name.
            out_m = p.MediaStateOut.model_construct(from_=me, audio=media.audio, video=media.video,
                                    screen=media.screen, name=msg.name)
            return [Publish(p.encode(out_m), "media-state", media=media)]
        if isinstance(msg, p.Chat):
            out_c = p.ChatOut.model_construct(from_=me, text=msg.text, at=round(now, 3),
                                              id=msg.id)
            if msg.id is None:
                return [Publish(p.encode(out_c), "chat")]
            # acknowledged once published: a line without its ack is sent again on resume
            return [Publish(p.encode(out_c), "chat"),
                    Send(p.encode(p.ChatAck(id=msg.id)))]
        if isinstance(msg, p.SfuRequest):
            return [SfuForward(msg)]
        if isinstance(msg, p.Leave):
            self.departed = True
            return [Depart(), *self._close(p.CloseCode.NORMAL, "bye")]
        return self._violation(now, COST_BAD_MESSAGE, "bad-message", "already joined",
                               msg.type, p.CloseCode.ABUSE, "too many bad messages")

    # --- outcomes of the join, timers ----------------------------------------------------

    def joined(self, *, peer_id: str, room_key: str, peers: Container[str]) -> None:
        """The transport joined the peer: `peers` is the live view of the room's peer ids."""
        self.state = State.JOINED
        self.peer_id, self.room_key, self.peers = peer_id, room_key, peers

    def reject(self, exc: JoinRejected) -> list[Effect]:
        """The join failed: close with the mapped code."""
        return self._close(exc.close_code, exc.message)

    def tick(self, now: float) -> list[Effect]:
        """Check the timers: join timeout (4408) and idle timeout (no frame, no ping)."""
        if self.state is State.AWAITING_JOIN and now - self.created >= self.limits.join_timeout:
            return self._close(p.CloseCode.JOIN_TIMEOUT, "join timeout")
        if self.state is State.JOINED and now - self.last_rx >= self.limits.idle_timeout:
            return self._close(p.CloseCode.JOIN_TIMEOUT, "idle timeout")
        return []

    def membership_ended(self) -> list[Effect]:
        """The peer's slot in the room ended: leave, with no grace, and close (4410)."""
        if self.state is not State.JOINED:
            return []
        self.departed = True
        return [Depart(), *self._close(p.CloseCode.MEMBERSHIP_ENDED, "membership ended")]

    def going_away(self) -> list[Effect]:
        """The server is shutting down: close so the client resumes elsewhere."""
        if self.state is State.CLOSED:
            return []
        return self._close(p.CloseCode.GOING_AWAY, "server going away")

    @property
    def kind(self) -> Literal["joined", "pending", "closed"]:
        if self.state is State.JOINED:
            return "joined"
        return "closed" if self.state is State.CLOSED else "pending"
