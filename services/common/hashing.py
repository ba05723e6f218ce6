"""Keyed hashes that stand in for room names and IP addresses wherever a key is needed.

Redis keys and NATS subjects carry these opaque tokens, never the name or address itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final

KEY_BYTES: Final[int] = 15  # 120 bits: collision-free for any realistic room count


def keyed_hash(key: str | bytes, value: str, *, scope: str) -> str:
    """HMAC-SHA256 of `value` under `key`, domain-separated by `scope`; URL-safe, 24 chars."""
    k = key.encode() if isinstance(key, str) else key
    mac = hmac.new(k, f"{scope}\x00{value}".encode(), hashlib.sha256).digest()[:KEY_BYTES]
    return base64.urlsafe_b64encode(mac).decode("ascii")


def room_key(key: str | bytes, room: str) -> str:
    """Opaque key for a (normalised) room name."""
    return keyed_hash(key, room, scope="room")


def ip_key(key: str | bytes, ip: str) -> str:
    """Opaque key for an IP address."""
    return keyed_hash(key, ip, scope="ip")
