"""Signalling settings: `ParleySettings` plus the websocket limits, timers and origins.

Every field is read from `PARLEY_<FIELD>`; `PARLEY_ALLOWED_ORIGINS` takes a comma-separated
list (or a JSON list).
"""

from __future__ import annotations

import secrets

from pydantic import Field, SecretStr, field_validator

from services.common.settings import CidrList, ParleySettings, StrList
from services.signaling.resume import Deadlines
from services.signaling.session import Limits


def _replica_id() -> str:
    return secrets.token_hex(4)


class SignalingSettings(ParleySettings):
    """What the signalling service reads from its environment."""

    token_key: SecretStr | None = Field(
        default=None, description="Key join tokens are signed with (the same as rooms').")
    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8081, ge=0, le=65535, description="Port to listen on.")
    replica_id: str = Field(
        default_factory=_replica_id, pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="This replica's id in presence (random per process unless set).")
    max_message_bytes: int = Field(
        default=65536, ge=1024, le=1 << 20, description="Largest client frame accepted.")
    rate_per_second: float = Field(
        default=50.0, gt=0, description="Sustained client messages per second per socket.")
    rate_burst: float = Field(
        default=200.0, ge=1, description="Messages a socket may send in one burst.")
    abuse_burst: float = Field(
        default=50.0, ge=1, description="Violations (refused, malformed or oversized "
        "messages) tolerated in a burst before the socket is closed (4429 / 1009).")
    abuse_per_second: float = Field(
        default=1.0, ge=0, description="Rate at which tolerance for violations recovers.")
    allowed_origins: StrList = Field(
        default_factory=list, description="Origins allowed to open /ws; empty: same host "
        "name as the request (any port), '*': any.")
    resume_grace: float = Field(
        default=20.0, gt=0, description="Seconds a dropped peer id can be resumed.")
    heartbeat_interval: float = Field(
        default=5.0, gt=0, description="Seconds between presence heartbeats and reaps.")
    member_ttl: float = Field(
        default=60.0, ge=5, le=3600, description="Seconds a slot renewed for a peer with a "
        "socket lasts; one whose socket is gone (past its resume grace) leaves after this.")
    redis_recovery_grace: float = Field(
        default=15.0, ge=1, le=600, description="After Redis lost its data, joins that "
        "would open a room afresh are refused for this long (s) while replicas put back "
        "their rooms (set by whichever service notices first; the same as rooms').")
    member_renew_interval: float = Field(
        default=20.0, gt=0, description="Seconds between renewals of room membership "
        "(a third of the member TTL).")
    join_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a new socket has to send `join` (4408).")
    ping_interval: float = Field(
        default=15.0, gt=0, description="Seconds between client pings (told in welcome).")
    idle_timeout: float = Field(
        default=45.0, gt=0, description="Seconds without any frame before a socket is "
        "closed (and its peer enters the resume grace).")
    send_queue_frames: int = Field(
        default=512, ge=8, description="Frames queued for a socket before it is dropped "
        "as too slow (1013; it may resume).")
    drain_timeout: float = Field(
        default=5.0, ge=0, description="Seconds to close sockets on SIGTERM before exit.")
    connect_rate: float = Field(
        default=5.0, gt=0, description="New sockets per second per client address "
        "(kept in memory only, under a keyed hash).")
    connect_burst: float = Field(
        default=60.0, ge=1, description="New sockets a client address may open in a burst.")
    trusted_proxies: CidrList = Field(
        default_factory=list, description="CIDRs whose X-Forwarded-For is believed when "
        "rate-limiting new sockets per client address.")

    @field_validator("allowed_origins")
    @classmethod
    def _strip_slash(cls, value: list[str]) -> list[str]:
        return [o.strip().rstrip("/") for o in value]

    def origins(self) -> list[str]:
        """Origins allowed to open /ws: the list if set, else the public URL if set, else
        none (same host name as the request)."""
        if self.allowed_origins:
            return list(self.allowed_origins)
        return [self.public_url] if self.public_url else []

    def limits(self) -> Limits:
        """The per-connection limits for `Session`."""
        return Limits(
            max_message_bytes=self.max_message_bytes, rate=self.rate_per_second,
            burst=self.rate_burst, abuse_rate=self.abuse_per_second,
            abuse_burst=self.abuse_burst, join_timeout=self.join_timeout,
            idle_timeout=self.idle_timeout, ping_interval=self.ping_interval)

    def deadlines(self) -> Deadlines:
        """Presence deadlines from the grace and heartbeat settings."""
        return Deadlines(grace=self.resume_grace, heartbeat=self.heartbeat_interval)
