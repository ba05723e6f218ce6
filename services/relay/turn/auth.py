"""Long-term credentials with the TURN REST scheme, and nonces that expire.

RFC 8489 §9.2 (long-term credential mechanism): key = MD5(username ":" realm ":" password);
the password comes from `services.common.credentials.candidate_passwords` under the current
and previous shared secret. Nonces are stateless (`<issued-hex>-<mac>`, MAC under a
per-process key), so a worker keeps no table of them; one older than `nonce_lifetime`
earns 438 Stale Nonce (RFC 8489 §9.2.4).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

from services.common.credentials import candidate_passwords, username_expiry

from ..stun.constants import Attr
from ..stun.message import Message, verify_integrity
from .errors import BadRequest, StaleNonce, Unauthorized

MAX_CACHED_USERS: Final[int] = 4096
MAX_NONCE_LENGTH: Final[int] = 128


@dataclass(frozen=True, slots=True)
class Identity:
    """Who authenticated a request, and the key to sign the response with."""

    username: str
    key: bytes
    sha256: bool
    expires_at: int


def long_term_key(username: str, realm: str, password: str) -> bytes:
    """MD5(username:realm:password), RFC 8489 §9.2.2."""
    return hashlib.md5(f"{username}:{realm}:{password}".encode(), usedforsecurity=False).digest()


class Authenticator:
    """Checks MESSAGE-INTEGRITY of requests against REST credentials; mints nonces."""

    def __init__(
        self,
        *,
        realm: str,
        secrets: list[str],
        nonce_lifetime: float = 600.0,
        nonce_key: bytes | None = None,
    ) -> None:
        self.realm = realm
        self.nonce_lifetime = nonce_lifetime
        self._nonce_key = nonce_key or os.urandom(16)
        self._keys: OrderedDict[str, list[bytes]] = OrderedDict()
        self.secrets = secrets

    @property
    def secrets(self) -> list[str]:
        """The accepted shared secrets, current first."""
        return self._secrets

    @secrets.setter
    def secrets(self, value: list[str]) -> None:
        self._secrets = [s for s in value if s]
        self._keys.clear()

    def nonce(self, now: float) -> str:
        """A fresh nonce, valid for `nonce_lifetime` seconds from `now`."""
        issued = f"{int(now):x}"
        mac = hmac.new(self._nonce_key, issued.encode(), hashlib.sha256).hexdigest()[:16]
        return f"{issued}-{mac}"

    def nonce_fresh(self, nonce: str, now: float) -> bool:
        """Whether `nonce` is ours and younger than `nonce_lifetime`."""
        issued, _, mac = nonce.partition("-")
        if len(nonce) > MAX_NONCE_LENGTH or not issued or len(issued) > 12:
            return False
        expected = hmac.new(self._nonce_key, issued.encode(), hashlib.sha256).hexdigest()[:16]
        if not hmac.compare_digest(mac, expected):
            return False
        try:
            age = now - int(issued, 16)
        except ValueError:
            return False
        return -5.0 <= age <= self.nonce_lifetime

    def keys_for(self, username: str, now: float) -> list[bytes]:
        """Long-term keys `username` may hold (empty if expired or malformed)."""
        keys = self._keys.get(username)
        if keys is None:
            keys = [
                long_term_key(username, self.realm, p)
                for p in candidate_passwords(username, self._secrets, now=now)
            ]
            self._keys[username] = keys
            if len(self._keys) > MAX_CACHED_USERS:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(username)
            expiry = username_expiry(username)
            if expiry is None or expiry < now:
                return []
        return keys

    def authenticate(self, message: Message, now: float) -> Identity:
        """Authenticate a request (RFC 8489 §9.2.4).

        Raises:
            Unauthorized: no integrity, unknown/expired username, or integrity mismatch.
            BadRequest: integrity present but USERNAME, REALM or NONCE missing.
            StaleNonce: the nonce is not ours or has expired.
        """
        if message.integrity_offset < 0 and message.integrity_sha256_offset < 0:
            raise Unauthorized("no MESSAGE-INTEGRITY")
        attrs = message.attributes
        username = attrs.get(Attr.USERNAME)
        realm = attrs.get(Attr.REALM)
        nonce = attrs.get(Attr.NONCE)
        if username is None or realm is None or nonce is None:
            raise BadRequest("USERNAME, REALM and NONCE are required")
        if not self.nonce_fresh(nonce, now):
            raise StaleNonce("stale nonce")
        if realm != self.realm:
            raise Unauthorized("wrong realm")
        expiry = username_expiry(username)
        if expiry is None:
            raise Unauthorized("malformed username")
        for key in self.keys_for(username, now):
            if verify_integrity(message, key):
                return Identity(username, key, message.integrity_sha256_offset >= 0, expiry)
        raise Unauthorized("bad credentials")
