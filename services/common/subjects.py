"""The only place NATS subjects are made: one function per scope, opaque keys only.

Subjects never carry a room name or an IP address; where a subject needs to name a room
or a peer it carries a keyed hash (see `services.common.hashing`).
"""

from __future__ import annotations

import re
from typing import Final

PREFIX: Final[str] = "parley"
_TOKEN: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

RELAY_HEARTBEATS: Final[str] = f"{PREFIX}.relay.heartbeat.*"
RELAY_CONTROLS: Final[str] = f"{PREFIX}.relay.control.*"
RELAY_TRACES: Final[str] = f"{PREFIX}.relay.trace.*"
SFU_HEARTBEATS: Final[str] = f"{PREFIX}.sfu.heartbeat.*"
SFU_SESSIONS: Final[str] = f"{PREFIX}.sfu.session.*"
SFU_CONTROLS: Final[str] = f"{PREFIX}.sfu.control.*"
ROOMS_ALL: Final[str] = f"{PREFIX}.room.>"
ROOMS_MEMBERS: Final[str] = f"{PREFIX}.room.*.members"
DIAG_STREAM: Final[str] = "PARLEY_DIAG"
DIAG_ALL: Final[str] = f"{PREFIX}.diag.>"
AUDIT_ALL: Final[str] = f"{PREFIX}.audit.>"
BEACON_STREAM: Final[str] = "PARLEY_BEACONS"
BEACON_CONSUMER: Final[str] = "metrics-aggregator"
AUDIT_STREAM: Final[str] = "PARLEY_AUDIT"
DIAG_KEYS_BUCKET: Final[str] = "PARLEY_DIAG_KEYS"
DIAG_PUBKEYS_BUCKET: Final[str] = "PARLEY_DIAG_PUBKEYS"
DIAG_KEYS_STATE: Final[str] = "logpurge-last-purge"
INBOX_ROOT: Final[str] = "_INBOX"


def _token(value: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError(f"not a valid subject token: {value!r}")
    return value


def relay_heartbeat(relay_id: str) -> str:
    """Subject a relay publishes its heartbeat (load, draining) on."""
    return f"{PREFIX}.relay.heartbeat.{_token(relay_id)}"


def relay_control(relay_id: str) -> str:
    """Subject a relay listens on for control requests (drain, secret rotation)."""
    return f"{PREFIX}.relay.control.{_token(relay_id)}"


def relay_trace(relay_id: str) -> str:
    """Trace hints to one relay: which credential's allocation continues which join's trace
    (rooms publishes them only while tracing records; payload `TurnTraceHint`)."""
    return f"{PREFIX}.relay.trace.{_token(relay_id)}"
def sfu_heartbeat(sfu_id: str) -> str:
    """Subject an SFU publishes its heartbeat (load, draining) on."""
    return f"{PREFIX}.sfu.heartbeat.{_token(sfu_id)}"


def sfu_session(sfu_id: str) -> str:
    """Requests to one SFU (signalling's offers and slot maps); answered on the reply."""
    return f"{PREFIX}.sfu.session.{_token(sfu_id)}"


def sfu_control(sfu_id: str) -> str:
    """Subject an SFU listens on for control requests (drain, undrain)."""
    return f"{PREFIX}.sfu.control.{_token(sfu_id)}"


def room_events(room_key: str) -> str:
    """Broadcasts to every signalling replica holding peers of one room (opaque key)."""
    return f"{PREFIX}.room.{_token(room_key)}.events"


def room_members(room_key: str) -> str:
    """Slot changes of one room (rooms publishes `MembershipEvent`s; signalling listens)."""
    return f"{PREFIX}.room.{_token(room_key)}.members"


def room_all(room_key: str) -> str:
    """Every subject of one room: its events and its peers' inboxes (a wildcard)."""
    return f"{PREFIX}.room.{_token(room_key)}.>"


def peer_inbox(room_key: str, peer_id: str) -> str:
    """Messages addressed to one peer of one room, wherever its socket lives."""
    return f"{PREFIX}.room.{_token(room_key)}.peer.{_token(peer_id)}"


def diag_record(day: str, ip_key: str, room_key: str) -> str:
    """Diagnostic-log record subject: day bucket + keyed hashes, for purge/erase by filter."""
    return f"{PREFIX}.diag.{_token(day)}.{_token(ip_key)}.{_token(room_key)}"


def diag_filter(*, day: str = "*", ip_key: str = "*", room_key: str = "*") -> str:
    """Subject filter over diagnostic records (wildcards where a field is not given)."""
    parts = [day, ip_key, room_key]
    for p in parts:
        if p != "*":
            _token(p)
    return f"{PREFIX}.diag." + ".".join(parts)


def audit(kind: str) -> str:
    """Audit events (counts only) published by logpurge and erasure."""
    return f"{PREFIX}.audit.{_token(kind)}"


def beacons() -> str:
    """Raw anonymous usage beacons (JetStream stream PARLEY_BEACONS, max age 48 h)."""
    return f"{PREFIX}.metrics.beacon"


def logpurge_erase() -> str:
    """Erasure requests to logpurge (keyed hashes only); answered on the reply subject."""
    return f"{PREFIX}.logpurge.erase"


def inbox_prefix(service: str) -> str:
    """The reply-subject prefix of one service's connections (`_INBOX.<service>`).

    Each service's NATS user may subscribe only under its own prefix, so it cannot read
    the replies (JetStream acknowledgements, KV answers) meant for another service.
    """
    return f"{INBOX_ROOT}.{_token(service)}"


def kv_subject(bucket: str, key: str = ">") -> str:
    """The subject of one key of a JetStream KV bucket (or all of its keys)."""
    return f"$KV.{_token(bucket)}.{key if key in ('*', '>') else _token(key)}"
