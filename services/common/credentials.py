"""TURN REST ephemeral credentials: the `use-auth-secret` scheme coturn understands.

username = "<expiry-unix>:<random-id>", password = base64(HMAC-SHA1(secret, username)).
Rooms mints them; the relay verifies them against its current and previous secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Final

DEFAULT_TTL_SECONDS: Final[int] = 6 * 3600
MAX_USERNAME_LENGTH: Final[int] = 128


@dataclass(frozen=True, slots=True)
class TurnCredential:
    """One ephemeral TURN credential pair."""

    username: str
    password: str
    expires_at: int


def turn_password(secret: str | bytes, username: str) -> str:
    """Derive the TURN REST password for `username`: base64(HMAC-SHA1(secret, username))."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def mint_turn_credential(
    secret: str | bytes, *, ttl: int = DEFAULT_TTL_SECONDS, now: float | None = None
) -> TurnCredential:
    """Mint a fresh credential valid for `ttl` seconds from `now` (default: wall clock)."""
    expires_at = int((time.time() if now is None else now) + ttl)
    username = f"{expires_at}:{secrets.token_urlsafe(9)}"
    return TurnCredential(username, turn_password(secret, username), expires_at)


def username_digest(username: str) -> str:
    """An opaque name for a credential (its username's SHA-256, 32 hex digits): what the
    trace hints between rooms and the relay carry (`services.common.messages.TurnTraceHint`)."""
    return hashlib.sha256(username.encode()).hexdigest()[:32]


def username_expiry(username: str) -> int | None:
    """Return the expiry encoded in a REST username, or None if it is not of that form."""
    if len(username) > MAX_USERNAME_LENGTH:
        return None
    head = username.split(":", 1)[0]
    if not head.isdigit() or len(head) > 12:
        return None
    return int(head)


def candidate_passwords(username: str, secrets_: list[str], *, now: float) -> list[str]:
    """Passwords `username` may have under each accepted secret; empty if expired or malformed.

    The relay accepts the current and the previous secret so that rotation never cuts a call.
    """
    expiry = username_expiry(username)
    if expiry is None or expiry < now:
        return []
    return [turn_password(s, username) for s in secrets_ if s]


class SecretSource:
    """The current TURN secret from a value or a file that is re-read when it changes.

    A Kubernetes Secret mounted as a volume is updated in place when the operator rotates it;
    reading it through this picks the new value up without a restart.
    """

    def __init__(self, *, value: str = "", path: str = "") -> None:
        self._value, self._path = value, path
        self._cached: tuple[float, str] | None = None

    def get(self) -> str:
        """The secret now ('' when there is none or the file cannot be read)."""
        if not self._path:
            return self._value
        import os

        try:
            mtime = os.stat(self._path).st_mtime
            if self._cached is None or self._cached[0] != mtime:
                with open(self._path, encoding="utf-8") as f:
                    self._cached = (mtime, f.read().strip())
        except OSError:
            return self._value
        return self._cached[1]
