"""Exceptions of the signalling service.

The tree::

    SignalingError                 any signalling failure
    ├── ProtocolError              a client broke the protocol (remote error)
    │   ├── BadMessage             not JSON, not an object, or fails its schema  → `error`
    │   ├── UnknownType            a `type` this server does not know            → `error`
    │   ├── TooLarge               a frame above `max_message_bytes`              → `error`
    │   └── JoinRejected           the `join` cannot be honoured                  → close code
    │       ├── BadJoin            malformed join, bad room name (4400)
    │       ├── Unauthorized       missing, invalid or expired token (4401)
    │       ├── WrongRoom          token for another room (4403)
    │       ├── ResumeFailed       the session to resume is gone (4404)
    │       ├── NoPlace            not (or no longer) a member of the room (4409)
    │       └── MembershipEnded    the slot of the peer to resume has ended (4410)
    └── PresenceError              Redis presence state is not what we expected (local error)

Protocol errors carry the `error.code` or the websocket close code they map to; the
transport translates them at its boundary and never lets a parser's exception escape.
"""

from __future__ import annotations

from typing import Literal


class SignalingError(Exception):
    """Base of every signalling error."""


class ProtocolError(SignalingError):
    """The client sent something the protocol does not allow."""

    code: Literal["bad-message", "unknown-type", "too-large"] = "bad-message"

    def __init__(self, message: str, *, ref: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.ref = ref


class BadMessage(ProtocolError):
    """Not JSON, not an object, or a known type that fails its schema."""

    code = "bad-message"


class UnknownType(ProtocolError):
    """The message's `type` is not one this server knows."""

    code = "unknown-type"


class TooLarge(ProtocolError):
    """The frame is larger than `max_message_bytes`."""

    code = "too-large"


class JoinRejected(ProtocolError):
    """A `join` that cannot be honoured: the socket closes with `close_code`."""

    close_code: int = 4400


class BadJoin(JoinRejected):
    """The join is malformed or names an invalid room."""

    close_code = 4400


class Unauthorized(JoinRejected):
    """The join token is missing, invalid or expired."""

    close_code = 4401


class WrongRoom(JoinRejected):
    """The join token was issued for another room."""

    close_code = 4403


class ResumeFailed(JoinRejected):
    """The session to resume is gone (grace period over) or the resume key is wrong."""

    close_code = 4404


class NoPlace(JoinRejected):
    """The peer is not (or no longer) a member of the room: join again through rooms."""

    close_code = 4409


class MembershipEnded(JoinRejected):
    """The peer's slot ended (it left through rooms, or it expired): no resume."""

    close_code = 4410


class PresenceError(SignalingError):
    """Presence state in Redis is not what this replica expected."""
