"""Exceptions of the TURN core; each remote error carries the STUN error code it maps to.

```
TurnError                      base of the TURN core's exceptions
├── LocalError                 we broke a rule (bad configuration, internal misuse)
└── RemoteError                the client broke a rule; answered with `code` (RFC 8656 §18)
    ├── BadRequest             400
    ├── Unauthorized           401 (with REALM and NONCE)
    ├── Forbidden              403 (peer address refused by policy)
    ├── UnknownAttribute       420 (with UNKNOWN-ATTRIBUTES)
    ├── AllocationMismatch     437
    ├── StaleNonce             438 (with REALM and a fresh NONCE)
    ├── AddressFamily          440
    ├── WrongCredentials       441
    ├── UnsupportedTransport   442
    ├── PeerFamilyMismatch     443
    ├── QuotaReached           486
    └── InsufficientCapacity   508 (also while draining)
```
"""

from __future__ import annotations

from typing import ClassVar


class TurnError(Exception):
    """Base class of the TURN core's exceptions."""


class LocalError(TurnError):
    """The relay itself broke a rule: bad configuration or misuse of the core."""


class RemoteError(TurnError):
    """The client broke a rule; the request is answered with error `code`."""

    code: ClassVar[int] = 500

    def __init__(self, reason: str = "", *, unknown: list[int] | None = None) -> None:
        super().__init__(reason or self.__class__.__name__)
        self.unknown = unknown or []


class BadRequest(RemoteError):
    """400: malformed request or missing mandatory attribute."""

    code = 400


class Unauthorized(RemoteError):
    """401: no or wrong credentials (RFC 8489 §9.2.4)."""

    code = 401


class Forbidden(RemoteError):
    """403: the peer address is refused by the relay's policy."""

    code = 403


class UnknownAttribute(RemoteError):
    """420: a comprehension-required attribute the relay does not implement."""

    code = 420


class AllocationMismatch(RemoteError):
    """437: allocation exists on Allocate, or is missing on other requests."""

    code = 437


class StaleNonce(RemoteError):
    """438: the NONCE expired or is not one of ours."""

    code = 438


class AddressFamily(RemoteError):
    """440: requested relayed address family is not served here."""

    code = 440


class WrongCredentials(RemoteError):
    """441: the request's username differs from the allocation's."""

    code = 441


class UnsupportedTransport(RemoteError):
    """442: REQUESTED-TRANSPORT other than UDP."""

    code = 442


class PeerFamilyMismatch(RemoteError):
    """443: the peer's address family differs from the relayed address's."""

    code = 443


class QuotaReached(RemoteError):
    """486: the username has all the allocations it may have."""

    code = 486


class InsufficientCapacity(RemoteError):
    """508: the relay is full or draining."""

    code = 508
