"""Join tokens: short-lived signed JWTs (HS256) that carry the room and the peer id.

Rooms issues one per join; signalling accepts a websocket only with a valid one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final

import jwt

ALGORITHM: Final[str] = "HS256"
AUDIENCE: Final[str] = "parley-signaling"
ISSUER: Final[str] = "parley-rooms"
DEFAULT_TTL_SECONDS: Final[int] = 120
MAX_TOKEN_LENGTH: Final[int] = 2048


class TokenError(Exception):
    """A join token is missing, malformed, expired or not signed by us."""


class TokenExpired(TokenError):
    """The join token was valid once but has expired."""


@dataclass(frozen=True, slots=True)
class JoinClaims:
    """What a join token asserts."""

    room: str
    room_key: str
    peer_id: str
    expires_at: int
    owner: bool = False


def issue_join_token(
    key: str,
    *,
    room: str,
    room_key: str,
    peer_id: str,
    owner: bool = False,
    ttl: int = DEFAULT_TTL_SECONDS,
    now: float | None = None,
) -> str:
    """Sign a join token for `peer_id` in `room`, valid for `ttl` seconds."""
    iat = int(time.time() if now is None else now)
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": iat,
        "exp": iat + ttl,
        "room": room,
        "rk": room_key,
        "sub": peer_id,
        "own": owner,
    }
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def verify_join_token(
    key: str, token: str, *, now: float | None = None, allow_expired: bool = False
) -> JoinClaims:
    """Check signature, audience and expiry (unless `allow_expired`); return the claims.

    Raises:
        TokenExpired: the token has expired.
        TokenError: anything else is wrong with it.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("token missing or too long")
    options: Any = {
        "require": ["exp", "iat", "sub", "aud", "iss"],
        "verify_exp": now is None and not allow_expired,
    }
    try:
        claims = jwt.decode(
            token, key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER, options=options
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired("token expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid token: {exc}") from exc
    if now is not None and not allow_expired and int(claims["exp"]) <= now:
        raise TokenExpired("token expired")
    try:
        return JoinClaims(
            room=str(claims["room"]),
            room_key=str(claims["rk"]),
            peer_id=str(claims["sub"]),
            expires_at=int(claims["exp"]),
            owner=bool(claims.get("own", False)),
        )
    except KeyError as exc:
        raise TokenError(f"token lacks claim {exc}") from exc


SFU_AUDIENCE: Final[str] = "parley-sfu-ticket"


@dataclass(frozen=True, slots=True)
class SfuTicket:
    """What an SFU ticket asserts: this peer of this room may talk to this SFU."""

    room_key: str
    peer_id: str
    sfu_id: str


def issue_sfu_ticket(key: str, *, room_key: str, peer_id: str, sfu_id: str,
                     ttl: int = DEFAULT_TTL_SECONDS, now: float | None = None) -> str:
    """Sign a ticket rooms hands out with a room's SFU (docs/sfu.md): signalling forwards
    the page's offer to `sfu_id` only with one, for the same room and peer."""
    iat = int(time.time() if now is None else now)
    payload = {"iss": ISSUER, "aud": SFU_AUDIENCE, "iat": iat, "exp": iat + ttl,
               "rk": room_key, "sub": peer_id, "sfu": sfu_id}
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def verify_sfu_ticket(key: str, ticket: str, *, now: float | None = None) -> SfuTicket:
    """Check an SFU ticket (signature, audience, expiry).

    Raises:
        TokenExpired: expired.
        TokenError: anything else is wrong with it.
    """
    if not ticket or len(ticket) > MAX_TOKEN_LENGTH:
        raise TokenError("ticket missing or too long")
    options: Any = {"require": ["exp", "iat", "sub", "aud", "iss"], "verify_exp": now is None}
    try:
        claims = jwt.decode(ticket, key, algorithms=[ALGORITHM], audience=SFU_AUDIENCE,
                            issuer=ISSUER, options=options)
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired("ticket expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid ticket: {exc}") from exc
    if now is not None and int(claims["exp"]) <= now:
        raise TokenExpired("ticket expired")
    try:
        return SfuTicket(room_key=str(claims["rk"]), peer_id=str(claims["sub"]),
                         sfu_id=str(claims["sfu"]))
    except KeyError as exc:
        raise TokenError(f"ticket lacks claim {exc}") from exc
