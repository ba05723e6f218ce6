"""SFU settings: every `parley sfu` flag, also read from `PARLEY_SFU_*` variables."""

from __future__ import annotations

import re
import socket
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.relay.settings import split_hostport


def _default_id() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:64] or "sfu"


class SfuSettings(BaseSettings):
    """What `parley sfu` is told (docs/sfu.md, "Process"); defaults are the safe ones."""

    model_config = SettingsConfigDict(env_prefix="PARLEY_SFU_", extra="ignore", frozen=True)

    id: str = Field(default_factory=_default_id, pattern=r"^[A-Za-z0-9_-]{1,64}$",
                    description="Subject token of this SFU (a pod's name).")
    listen: str = Field(default="0.0.0.0:7882",
                        description="UDP address for ICE, DTLS and SRTP of every participant.")
    public_host: str | None = Field(
        default=None, max_length=253,
        description="Address in the SDP answer's candidate (default: the listen host).")
    public_port: int | None = Field(default=None, ge=1, le=65535,
                                    description="Port in the candidate, if not the listen port.")
    http_host: str = Field(default="0.0.0.0", description="Health/metrics listening host.")
    http_port: int = Field(default=9643, ge=0, le=65535, description="Health/metrics; 0 = off.")
    nats_url: str | None = Field(default=None, description="NATS URL; none = standalone.")
    heartbeat_interval: float = Field(default=2.0, gt=0, le=60)
    drain_deadline: float = Field(default=300.0, ge=0,
                                  description="Seconds calls may go on after SIGTERM.")
    max_peers: int = Field(default=200, ge=1, le=100_000,
                           description="PeerConnections accepted; the heartbeat's capacity.")
    remb_bps: int = Field(default=1_500_000, ge=50_000, le=50_000_000,
                          description="REMB cap sent to every video publisher (bits/s).")
    consent_timeout: float = Field(default=10.0, ge=2, le=120,
                                   description="Seconds without an ICE check before closing.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _check(self) -> SfuSettings:
        host, _ = split_hostport(self.listen)
        if host in ("0.0.0.0", "::", "") and not self.public_host:
            raise ValueError("--public-host is required when --listen is a wildcard address")
        return self

    def listen_address(self) -> tuple[str, int]:
        return split_hostport(self.listen)

    def candidate_address(self, bound_port: int) -> tuple[str, int]:
        """The (host, port) announced in answers; `bound_port` when listening on port 0."""
        host, port = self.listen_address()
        return self.public_host or host, self.public_port or port or bound_port
