"""Settings shared by every service (pydantic-settings, env prefix `PARLEY_`).

Each service subclasses `ParleySettings` with its own fields; every field is documented
in its `description` and read from `PARLEY_<FIELD>` (upper case).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.publicurl import parse_public_url


class SettingsError(Exception):
    """A required setting is missing or invalid; the message names the variable."""


class ParleySettings(BaseSettings):
    """What every Parley service reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="PARLEY_", extra="ignore", frozen=True)

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        description="NATS server(s), comma-separated; JetStream must be enabled.",
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Redis URL.")
    hash_key: SecretStr | None = Field(
        default=None,
        description="Key for keyed hashes of room names and IPs (Redis keys, NATS subjects).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level for stdout logs (which never carry PII)."
    )
    log_json: bool = Field(default=False, description="Log one JSON object per line.")
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        default="none", description="Where OpenTelemetry traces go."
    )
    retention_days: int = Field(
        default=30, ge=1, le=3650, description="Diagnostic-log retention in days."
    )
    public_url: str = Field(
        default="",
        description="Origin browsers use (https://chat.example.org): links, the websocket "
        "URL and the allowed Origin derive from it; empty = paths relative to the request.",
    )

    @field_validator("public_url")
    @classmethod
    def _public_origin(cls, value: str) -> str:
        return parse_public_url(value)

    def require(self, name: str) -> str:
        """Return the secret setting `name`, or raise SettingsError naming its variable."""
        value = getattr(self, name)
        if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()):
            raise SettingsError(f"PARLEY_{name.upper()} is not set")
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)
