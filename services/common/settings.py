"""Settings shared by every service (pydantic-settings, env prefix `PARLEY_`).

Each service subclasses `ParleySettings` with its own fields; every field is documented
in its `description` and read from `PARLEY_<FIELD>` (upper case). A list setting is typed
with one of the `*List` aliases below, so that it takes comma-separated values
(`10.0.0.0/8,127.0.0.1/32`) as well as a JSON list (`["10.0.0.0/8"]`).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.common.publicurl import parse_public_url


class SettingsError(Exception):
    """A required setting is missing or invalid; the message names the variable."""


def split_list(value: object) -> object:
    """A list setting from the environment: a JSON list, or comma-separated values.

    Raises:
        ValueError: a value that starts like a JSON list but is not one (pydantic turns
            it into a validation error naming the field).
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON list ({exc.msg} at character {exc.pos})") from None
        if not isinstance(parsed, list):
            raise ValueError("not a JSON list")
        return parsed
    return [item.strip() for item in text.split(",") if item.strip()]


def check_cidrs(values: list[str]) -> list[str]:
    """Every item must be a CIDR (or a bare address); `ValueError` names the bad one."""
    for value in values:
        try:
            ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            raise ValueError(f"not a CIDR: {value!r}") from None
    return values


def check_stun_urls(values: list[str]) -> list[str]:
    """Every item must be a `stun:` or `stuns:` URL (what browsers accept without credentials)."""
    for value in values:
        if not value.startswith(("stun:", "stuns:")) or len(value.split(":", 1)[1]) == 0:
            raise ValueError(f"not a stun: URL: {value!r}")
    return values


#: A list of strings: comma-separated or a JSON list.
StrList = Annotated[list[str], NoDecode, BeforeValidator(split_list)]
#: A list of secrets: comma-separated or a JSON list.
SecretList = Annotated[list[SecretStr], NoDecode, BeforeValidator(split_list)]
#: A list of CIDRs: comma-separated or a JSON list, each checked.
CidrList = Annotated[list[str], NoDecode, BeforeValidator(split_list), AfterValidator(check_cidrs)]
#: A list of STUN URLs: comma-separated or a JSON list, each checked.
StunUrlList = Annotated[
    list[str], NoDecode, BeforeValidator(split_list), AfterValidator(check_stun_urls)
]


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
    openapi: bool = Field(
        default=False,
        description="Publish the OpenAPI schema (/openapi.json; rooms: /api/openapi.json). "
        "No HTML API docs are ever served (they load third-party scripts).",
    )
    security_contact: str = Field(
        default="",
        description="Where to report a vulnerability (mailto:, https: or tel: URI; a bare "
        "e-mail address becomes mailto:), served as /.well-known/security.txt (RFC 9116). "
        "Empty: no security.txt.",
    )

    @field_validator("security_contact")
    @classmethod
    def _contact_uri(cls, value: str) -> str:
        value = value.strip()
        if not value or value.startswith(("mailto:", "https://", "tel:")):
            if any(c.isspace() for c in value):
                raise ValueError("a contact URI has no spaces")
            return value
        if "@" in value and ":" not in value and not any(c.isspace() for c in value):
            return f"mailto:{value}"
        raise ValueError("expected a mailto:, https:// or tel: URI, or an e-mail address")

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
