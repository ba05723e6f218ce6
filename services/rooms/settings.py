"""Settings of the rooms service (env `PARLEY_*`)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from services.common.settings import CidrList, ParleySettings, StrList, StunUrlList


class RoomsSettings(ParleySettings):
    """What rooms reads from its environment; every field is `PARLEY_<NAME>`."""

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8080, ge=1, le=65535, description="HTTP port.")
    token_key: SecretStr | None = Field(
        default=None, description="HS256 key that signs join tokens (shared with signalling)."
    )
    turn_secret: SecretStr | None = Field(
        default=None, description="TURN REST shared secret (coturn's static-auth-secret)."
    )
    turn_secret_file: str = Field(
        default="",
        description=(
            "File holding the TURN secret (a mounted Secret's `current` key); re-read when it "
            "changes, so a rotated secret is used without a restart. Wins over turn_secret."
        ),
    )
    turn_credential_ttl: int = Field(
        default=6 * 3600, ge=60, le=7 * 86400, description="Lifetime of TURN credentials (s)."
    )
    room_capacity: int = Field(default=6, ge=1, le=50, description="Peers per room (full mesh).")
    mesh_max: int = Field(
        default=4, ge=0, le=50,
        description="A room with more people than this goes through the SFU; 0 = always "
        "(docs/sfu.md). Only while an SFU is live; else rooms stay mesh.")
    sfu_room_capacity: int = Field(
        default=20, ge=2, le=50, description="People per room through the SFU.")
    sfu_ttl: float = Field(
        default=10.0, ge=1, le=300,
        description="An SFU whose last heartbeat is older than this (s) is dead.")
    join_token_ttl: int = Field(default=120, ge=10, le=3600, description="Join token life (s).")
    join_grace: float = Field(
        default=15.0, ge=1, le=600,
        description="A slot taken by a join whose socket has not joined signalling within "
        "this long (s) is released; once the socket joins, signalling renews it.",
    )
    signaling_url: str = Field(
        default="",
        description=(
            "Websocket URL of signalling; empty means ws(s)://<this host>/ws. Several, "
            "comma-separated, are handed out round-robin (the dev stack's replicas)."
        ),
    )
    metrics_url: str | None = Field(
        default=None,
        description=(
            "Metrics service URL given to browsers; `self` means this page's own origin (an "
            "Ingress routes the metrics paths); unset means no usage statistics at all."
        ),
    )
    stun_urls: StunUrlList = Field(
        default_factory=list,
        description="STUN URLs handed out when no relay is live (none by default: privacy).",
    )
    diag_create: bool = Field(
        default=True,
        description=(
            "Create the diagnostic-log stream and key bucket when missing. False when "
            "logpurge owns them (per-service NATS users): rooms then waits for them."
        ),
    )
    relay_ttl: float = Field(
        default=10.0, ge=1, le=300,
        description="A relay whose last heartbeat is older than this (s) is not handed out.",
    )
    force_relay: bool = Field(
        default=False, description="Make every client use iceTransportPolicy 'relay'."
    )
    join_rate: float = Field(default=2.0, gt=0, description="Joins per second per client.")
    join_burst: int = Field(default=20, ge=1, description="Burst of joins per client.")
    web_dir: str = Field(default="", description="Folder of the web client; empty = bundled.")
    trusted_proxies: CidrList = Field(
        default_factory=list,
        description="CIDRs whose X-Forwarded-For is believed (the client address recorded).",
    )
    allowed_origins: StrList = Field(
        default_factory=list,
        description="Origins, besides the page's own, allowed to POST to /api (the variable "
        "signalling reads for /ws); '*': any. Requests without an Origin (non-browser "
        "clients) are allowed.",
    )
