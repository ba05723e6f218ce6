"""Settings of logpurge (env `PARLEY_*`)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from services.common.settings import ParleySettings


class LogpurgeSettings(ParleySettings):
    """What logpurge reads from its environment; every field is `PARLEY_<NAME>`."""

    host: str = Field(default="127.0.0.1", description="Address of the admin/health port.")
    port: int = Field(default=8084, ge=1, le=65535, description="Admin/health HTTP port.")
    logpurge_interval: float = Field(
        default=3600.0, ge=1, le=86400, description="Seconds between purge cycles."
    )
    logpurge_admin_key: SecretStr | None = Field(
        default=None, description="Bearer key for the admin erase endpoint (unset = disabled)."
    )
    logpurge_clock_skew: float = Field(
        default=300.0, ge=0, le=3600,
        description="How far out of time order records may be written (replica clock skew).",
    )
