"""Resume: the keys that let a dropped socket take back its peer id, and the deadlines.

A peer's presence carries a deadline. While its socket lives the holding replica pushes the
deadline to `now + grace + heartbeat` on every heartbeat, so it never lapses between two;
when the socket drops the deadline becomes `now + grace`. Whoever sees a deadline in the
past (any replica holding peers of the room) reaps the peer and announces `peer-left`
(`timeout`). So a peer that comes back within the grace resumes unseen, and a replica that
dies leaves no ghost for longer than grace + heartbeat. The resume key is random, shown to
the client once per welcome, rotated on every resume, and stored only as a hash.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from typing import Final

RESUME_KEY_BYTES: Final[int] = 24


def new_resume_key() -> str:
    """A fresh random resume key (URL-safe text)."""
    return secrets.token_urlsafe(RESUME_KEY_BYTES)


def hash_resume_key(key: str) -> str:
    """What presence stores instead of the key: SHA-256 hex (the key is 192 random bits)."""
    return hashlib.sha256(key.encode()).hexdigest()


def keys_match(stored_hash: str, presented_key: str) -> bool:
    """Constant-time check of a presented key against a stored hash."""
    return hmac.compare_digest(stored_hash, hash_resume_key(presented_key))


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Presence deadlines from the grace period and the heartbeat interval (seconds)."""

    grace: float = 20.0
    heartbeat: float = 5.0

    def live(self, now: float) -> float:
        """Deadline of a peer whose socket is open (renewed every heartbeat)."""
        return now + self.grace + self.heartbeat

    def dropped(self, now: float) -> float:
        """Deadline of a peer whose socket just dropped: the end of its grace."""
        return now + self.grace

    def key_ttl(self) -> int:
        """TTL of a room's presence keys: a backstop for rooms nobody reaps any more."""
        return max(60, math.ceil(3 * (self.grace + self.heartbeat)))


class ResumeOutcome(enum.Enum):
    """What became of a resume request."""

    RESUMED = "resumed"
    GONE = "gone"  # no such peer, or its grace is over
    BAD_KEY = "bad-key"


def decide_resume(*, stored_hash: str | None, deadline: float | None, presented_key: str,
                  now: float) -> ResumeOutcome:
    """Decide a resume from what presence holds for the peer (the Redis script mirrors this).

    Args:
        stored_hash: the stored resume-key hash, None if the peer has no presence.
        deadline: the peer's presence deadline, None if absent.
        presented_key: the key the client sent.
        now: the current unix time.
    """
    if stored_hash is None or deadline is None or deadline < now:
        return ResumeOutcome.GONE
    if not keys_match(stored_hash, presented_key):
        return ResumeOutcome.BAD_KEY
    return ResumeOutcome.RESUMED
