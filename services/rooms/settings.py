"""Settings of the rooms service (env `PARLEY_*`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import NoDecode

from services.common.settings import (
    CidrList,
    ParleySettings,
    SecretList,
    StrList,
    StunUrlList,
    split_list,
)
from services.rooms.turnservers import ExternalTurn, check_turn_servers, external_servers

#: External TURN servers: one item per server, its URLs separated by spaces; items
#: comma-separated or a JSON list (as every list setting).
TurnServerList = Annotated[
    list[str], NoDecode, BeforeValidator(split_list), AfterValidator(check_turn_servers)
]


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
    redis_recovery_grace: float = Field(
        default=15.0, ge=1, le=600,
        description="After Redis lost its data, a join that would open a room afresh is "
        "refused (503) for this long (s), while signalling re-registers live rooms "
        "(at least signalling's heartbeat interval plus a few seconds).",
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
    turn_servers: TurnServerList = Field(
        default_factory=list,
        description="External TURN servers (an existing coturn) handed out besides or instead "
        "of Parley's relays: one item per server, its turn:/turns:/stun: URLs separated by "
        "spaces, e.g. 'turn:turn.example.org:3478?transport=udp "
        "turns:turn.example.org:5349?transport=tcp'.",
    )
    turn_server_secrets: SecretList = Field(
        default_factory=list,
        description="Each external TURN server's REST secret (coturn's static-auth-secret "
        "with use-auth-secret), in the order of turn_servers. Never logged.",
    )
    turn_probe_interval: float = Field(
        default=30.0, ge=0.2, le=3600,
        description="Seconds between health probes of each external TURN server (one TURN "
        "Allocate); a server that fails one is not handed out until one succeeds.",
    )
    turn_probe_timeout: float = Field(
        default=5.0, gt=0, le=60, description="Seconds a probe's Allocate may take.",
    )

    @model_validator(mode="after")
    def _turn_secrets_match(self) -> RoomsSettings:
        self.external_turn()  # a count mismatch or an empty secret: one line, no secret
        return self

    def external_turn(self) -> list[ExternalTurn]:
        """The external TURN servers with their secrets (`ValueError` if they do not pair)."""
        return external_servers(self.turn_servers,
                                [s.get_secret_value() for s in self.turn_server_secrets])
