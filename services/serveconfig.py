"""`parley serve`'s settings file, `parley.toml`, and how it becomes a stack.

Looked for at `--config`, else `$PARLEY_CONFIG`, else `/etc/parley/parley.toml`, else
`<data dir>/parley.toml`; no file means the defaults below. Flags given on the command
line win over the file. Secrets do not belong here: the stack makes its keys and keeps
them in the state dir's `parley.env` (0600, see `services.statedir`).

```toml
data_dir = "/var/lib/parley"           # keys, JetStream files (metrics, diagnostic log)
public_url = "https://chat.example.org" # the origin browsers use
host = "0.0.0.0"                       # the public port's address
port = 443
tls_cert = "/etc/parley/tls/fullchain.pem"  # TLS on the public port and TURN over TLS
tls_key = "/etc/parley/tls/privkey.pem"
relay_public_host = "203.0.113.7"      # else: the address each request came in on
relay_host = "0.0.0.0"                 # where the relay listens (default: host)
relay_port = 3478                      # TURN/STUN, UDP and TCP
relay_tls_port = 5349                  # TURN over TLS (with tls_cert)
relays = 1                             # relay processes; more use the next ports (3479, …)

[env]                                  # any other PARLEY_* setting of the services
PARLEY_ROOM_CAPACITY = "6"
```
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from services.common.publicurl import parse_public_url

SYSTEM_CONFIG: Final[Path] = Path("/etc/parley/parley.toml")


class ServeConfigError(ValueError):
    """The settings file cannot be read or is invalid; the message names file and key."""


class ServeConfig(BaseModel):
    """What `parley.toml` may say (every key optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path | None = None
    public_url: str = ""
    host: str = "0.0.0.0"
    port: int | None = Field(default=None, ge=1, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    relay: bool = True
    relay_public_host: str | None = None
    relay_host: str | None = None
    relay_port: int = Field(default=3478, ge=1, le=65535)
    relay_tls_port: int = Field(default=5349, ge=1, le=65535)
    relays: int = Field(default=1, ge=1, le=8)
    signaling_replicas: int = Field(default=1, ge=1, le=8)
    force_relay: bool = False
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("public_url")
    @classmethod
    def _origin(cls, value: str) -> str:
        return parse_public_url(value)

    @field_validator("env")
    @classmethod
    def _parley_only(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [k for k in value if not k.startswith("PARLEY_")]
        if bad:
            raise ValueError(f"[env] holds PARLEY_* settings only, not {bad[0]}")
        return {k: str(v) for k, v in value.items()}

    def effective_port(self) -> int:
        """The public port: as set, else 443 with TLS and 8080 without."""
        return self.port or (443 if self.tls_cert else 8080)


def find_config(explicit: Path | None, data_dir: Path | None) -> Path | None:
    """The settings file to read, or None (defaults)."""
    if explicit is not None:
        return explicit
    if os.environ.get("PARLEY_CONFIG"):
        return Path(os.environ["PARLEY_CONFIG"])
    if SYSTEM_CONFIG.is_file():
        return SYSTEM_CONFIG
    if data_dir is not None and (data_dir / "parley.toml").is_file():
        return data_dir / "parley.toml"
    return None


def load_config(path: Path | None, overrides: dict[str, Any] | None = None) -> ServeConfig:
    """Read `path` (None: defaults), then apply the flags in `overrides` that are not None."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ServeConfigError(f"cannot read {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ServeConfigError(f"{path}: {exc}") from exc
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return ServeConfig(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "file"
        raise ServeConfigError(f"{path or 'settings'}: {where}: {first['msg']}") from None
