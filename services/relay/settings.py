"""Relay settings: every `parley relay` flag, also read from `PARLEY_RELAY_*` variables."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.common.settings import check_cidrs, split_list

from .turn.policy import parse_networks

MAX_WORKER_PORTS: Final[int] = 64  # a heartbeat carries at most this many worker ports


def split_hostport(value: str, *, default_port: int | None = None) -> tuple[str, int]:
    """Parse "host:port", "[v6]:port" or ":port"; `ValueError` says what is wrong."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)|([^:\[\]]*):(\d+)|([^:\[\]]+)", value.strip())
    if not match:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    if match.group(5) is not None:
        if default_port is None:
            raise ValueError(f"expected HOST:PORT, got {value!r}")
        host, port = match.group(5), default_port
    else:
        host = match.group(1) if match.group(1) is not None else match.group(3)
        port = int(match.group(2) or match.group(4))
    if not 0 < port < 65536:
        raise ValueError(f"port out of range in {value!r}")
    return host or "0.0.0.0", port


def _default_relay_id() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:64] or "relay"


class RelaySettings(BaseSettings):
    """What `parley relay` is told; defaults are the safe ones."""

    model_config = SettingsConfigDict(env_prefix="PARLEY_RELAY_", extra="ignore", frozen=True)

    listen: str = Field(default="0.0.0.0:3478", description="UDP and TCP listening address.")
    tls_listen: str | None = Field(default=None, description="TLS listening address (e.g. :443).")
    tls_cert: Path | None = Field(default=None, description="PEM certificate chain for TLS.")
    tls_key: Path | None = Field(default=None, description="PEM private key for TLS.")
    relay_ip: str | None = Field(
        default=None, description="Address relayed sockets bind to (default: the listen host)."
    )
    public_host: str | None = Field(
        default=None,
        description="Address clients use, announced in heartbeats (default: relay IP).",
    )
    public_port: int | None = Field(
        default=None, ge=1, le=65535,
        description="Port clients use when it differs from the listen port (a NodePort).",
    )
    public_tcp_port: int | None = Field(
        default=None, ge=1, le=65535,
        description="TCP port clients use, when it differs from the UDP one (a NodePort).",
    )
    ports: str = Field(default="49152-65535", description="Relayed port range LOW-HIGH.")
    realm: str = Field(default="parley", min_length=1, max_length=128)
    secret: str | None = Field(default=None, description="Current TURN REST shared secret.")
    previous_secret: str | None = Field(default=None, description="Previous secret (rotation).")
    secret_file: Path | None = Field(
        default=None, description="File with the current secret on line 1, previous on line 2."
    )
    workers: int = Field(default=0, ge=0, le=256, description="Worker processes; 0 = cores.")
    worker_port_base: int | None = Field(
        default=None, ge=1, le=65535,
        description="Worker k also listens (UDP and TCP, alone, no SO_REUSEPORT) on this "
        "port + k and the heartbeat announces these ports, so rooms can send every member "
        "of one room to one worker (in-process delivery); unset = off.",
    )
    allow_peer: Annotated[list[str], NoDecode, AfterValidator(check_cidrs)] = Field(
        default_factory=list,
        description="CIDRs opened to peers despite the deny list (comma- or space-separated, "
        "or a JSON list). Never opens the relay's own listening ports.",
    )
    user_quota: int = Field(default=10, ge=1, description="Allocations per username.")
    total_quota: int = Field(default=10000, ge=1, description="Allocations per relay.")
    max_lifetime: int = Field(default=3600, ge=60, description="Longest allocation lifetime (s).")
    nonce_lifetime: int = Field(default=600, ge=1, description="Nonce validity (s).")
    request_rate: float = Field(default=200.0, ge=0, description="STUN requests/s per source IP.")
    request_burst: float = Field(default=400.0, ge=1, description="Request burst per source IP.")
    bandwidth: int = Field(
        default=12_500_000, ge=0, description="Bytes/s per allocation, both ways; 0 = no cap."
    )
    rfc5766_channels: bool = Field(
        default=False,
        description="Accept channel numbers 0x5000-0x7FFF (RFC 5766 clients such as coturn's "
        "turnutils_uclient); RFC 8656 allows only 0x4000-0x4FFF.",
    )
    local_delivery: bool = Field(
        default=True,
        description="Hand packets between two allocations of one worker over in process "
        "(RFC 8656 rules kept) instead of through the kernel; off = always the kernel path.",
    )
    fastpath: Literal["auto", "off"] = Field(
        default="auto",
        description="The compiled packet path (services/relay/_fastpath): auto = use it when "
        "it was built, off = the pure-Python path.",
    )
    gso: bool = Field(
        default=False,
        description="UDP GSO on the compiled path: a batch's consecutive same-size datagrams "
        "to one client leave as one UDP_SEGMENT send (off: it only pays on uniform floods; "
        "see docs/relay.md). The pure-Python path has none.",
    )
    nats_url: str | None = Field(default=None, description="NATS URL; none = standalone.")
    relay_id: str = Field(default_factory=_default_relay_id, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    heartbeat_interval: float = Field(default=2.0, gt=0, description="Seconds between heartbeats.")
    http_host: str = Field(default="0.0.0.0", description="Health/metrics listening host.")
    http_port: int = Field(
        default=9641, ge=0, le=65535, description="Health/metrics port; 0 = off."
    )
    drain_deadline: float = Field(
        default=300.0, ge=0, description="Seconds allocations may live on after SIGTERM."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        default="none",
        description="Where OpenTelemetry traces go: an allocation hinted by rooms (NATS) "
        "becomes a span of its join's trace; none keeps no hint subscription at all.",
    )

    @field_validator("allow_peer", mode="before")
    @classmethod
    def _split_cidrs(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip().startswith("["):
            return [v for v in value.replace(",", " ").split() if v]
        return split_list(value)

    @model_validator(mode="after")
    def _check(self) -> RelaySettings:
        split_hostport(self.listen)
        if self.tls_listen is not None:
            split_hostport(self.tls_listen, default_port=443)
            if self.tls_cert is None or self.tls_key is None:
                raise ValueError("--tls-listen needs --tls-cert and --tls-key")
        self.port_range()
        self.worker_listen_ports()
        parse_networks(self.allow_peer)
        if not self.secrets():
            raise ValueError("a shared secret is required: --secret or --secret-file")
        return self

    def listen_address(self) -> tuple[str, int]:
        """The UDP/TCP listening (host, port)."""
        return split_hostport(self.listen)

    def tls_address(self) -> tuple[str, int] | None:
        """The TLS listening (host, port), if TLS is on."""
        return split_hostport(self.tls_listen, default_port=443) if self.tls_listen else None

    def port_range(self) -> tuple[int, int]:
        """The relayed port range (inclusive)."""
        match = re.fullmatch(r"(\d+)-(\d+)", self.ports.strip())
        if not match:
            raise ValueError(f"--ports must be LOW-HIGH, got {self.ports!r}")
        low, high = int(match.group(1)), int(match.group(2))
        if not 1024 <= low <= high <= 65535:
            raise ValueError(
                f"--ports must be within 1024-65535 and LOW <= HIGH, got {self.ports!r}"
            )
        return low, high

    def worker_listen_ports(self) -> list[int]:
        """The per-worker listening ports (worker k: `worker_port_base` + k), or [] when off.

        Raises:
            ValueError: past 65535, more than `MAX_WORKER_PORTS` workers, overlapping the
                relayed range or another listener, or with a translated public port.
        """
        base = self.worker_port_base
        if base is None:
            return []
        if self.public_port is not None or self.public_tcp_port is not None:
            raise ValueError(
                "--worker-port-base cannot be combined with --public-port or --public-tcp-port: "
                "worker ports are announced as bound, a port translation would break them"
            )
        if self.effective_workers() > MAX_WORKER_PORTS:
            raise ValueError(
                f"--worker-port-base allows at most {MAX_WORKER_PORTS} workers, "
                f"not {self.effective_workers()}"
            )
        last = base + self.effective_workers() - 1
        if last > 65535:
            raise ValueError(
                f"--worker-port-base {base} with {self.effective_workers()} workers ends past "
                "65535"
            )
        low, high = self.port_range()
        if base <= high and low <= last:
            raise ValueError(
                f"--worker-port-base ports {base}-{last} overlap the relayed ports {low}-{high}"
            )
        tls = self.tls_address()
        others = {
            "--listen": self.listen_address()[1], "--tls-listen": tls[1] if tls else None,
            "--http-port": self.http_port or None,
        }  # fmt: skip
        for option, port in others.items():
            if port is not None and base <= port <= last:
                raise ValueError(
                    f"--worker-port-base ports {base}-{last} include the {option} port {port}"
                )
        return list(range(base, last + 1))

    def effective_relay_ip(self) -> str:
        """Where relayed sockets bind: `relay_ip`, else the listen host if it is specific."""
        if self.relay_ip:
            return self.relay_ip
        host = self.listen_address()[0]
        if host in ("0.0.0.0", "::"):
            raise ValueError("--relay-ip is required when --listen is a wildcard address")
        return host

    def effective_workers(self) -> int:
        """Worker processes to run (0 means one per core)."""
        return self.workers or os.cpu_count() or 1

    def secrets(self) -> list[str]:
        """Accepted secrets, current first: from `secret_file` if set, else the flags."""
        if self.secret_file is not None:
            try:
                lines = self.secret_file.read_text().splitlines()
            except OSError as exc:
                raise ValueError(f"cannot read --secret-file: {exc.strerror}") from exc
            return [line.strip() for line in lines[:2] if line.strip()]
        return [s for s in (self.secret, self.previous_secret) if s]
