"""Settings of the metrics service (env `PARLEY_*`): ingest limits, API keys, k, retention."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from services.common.settings import (
    CidrList,
    ParleySettings,
    SecretList,
    SettingsError,
    StrList,
)

MIN_K_WITHOUT_FLAG = 5


class MetricsSettings(ParleySettings):
    """What `parley metrics` reads from its environment; every field is `PARLEY_<NAME>`."""

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8085, ge=1, le=65535, description="HTTP port.")
    metrics_api_keys: SecretList = Field(
        default_factory=list,
        description="API keys for /reports, comma-separated (none: reports are refused).",
    )
    metrics_k: int = Field(
        default=10, ge=1, le=10_000,
        description="k-anonymity: rows with fewer sessions are suppressed.",
    )
    metrics_allow_small_k: bool = Field(
        default=False, description=f"Allow PARLEY_METRICS_K below {MIN_K_WITHOUT_FLAG}.",
    )
    metrics_epsilon: float | None = Field(
        default=None, gt=0, le=10,
        description="Differential-privacy epsilon per released report (opendp, discrete "
        "Laplace noise on counts); unset = no noise.",
    )
    metrics_allowed_origins: StrList = Field(
        default_factory=list,
        description="Origins allowed to POST beacons and read /stats data (CORS), "
        "comma-separated; '*' = any; empty = none (same-origin only).",
    )
    metrics_raw_max_age: float = Field(
        default=48 * 3600.0, ge=60, le=48 * 3600.0,
        description="Seconds a raw beacon lives in the JetStream stream (at most 48 h).",
    )
    metrics_retention_days: int = Field(
        default=400, ge=1, le=3650, description="Days the per-day aggregates are kept.",
    )
    metrics_period: Literal["day", "week"] = Field(
        default="week",
        description="Size of the fixed report periods (UTC days, or ISO weeks).",
    )
    metrics_include_current_period: bool = Field(
        default=False,
        description="Also serve the period still in progress (development only: a "
        "growing period can be differenced over time).",
    )
    metrics_rate: float = Field(default=1.0, gt=0, description="Beacons/s per source.")
    metrics_burst: int = Field(default=20, ge=1, description="Beacon burst per source.")
    metrics_dedup_window: float = Field(
        default=600.0, ge=1, le=86400,
        description="Seconds within which a repeated session nonce is dropped (JetStream).",
    )
    trusted_proxies: CidrList = Field(
        default_factory=list,
        description="CIDRs whose X-Forwarded-For is believed (for the rate limit only).",
    )
    metrics_aggregate: bool = Field(
        default=True,
        description="Run the aggregator in this process (false: ingest and reports only, "
        "with `parley metrics aggregate` run apart).",
    )
    metrics_batch: int = Field(
        default=256, ge=1, le=4096, description="Beacons the aggregator folds per batch."
    )

    @field_validator("metrics_allowed_origins")
    @classmethod
    def _strip_slash(cls, value: list[str]) -> list[str]:
        return [o.rstrip("/") for o in value]

    @model_validator(mode="after")
    def _check_k(self) -> Self:
        if self.metrics_k < MIN_K_WITHOUT_FLAG and not self.metrics_allow_small_k:
            raise SettingsError(
                f"PARLEY_METRICS_K={self.metrics_k} is below {MIN_K_WITHOUT_FLAG}; set "
                "PARLEY_METRICS_ALLOW_SMALL_K=true if you mean it"
            )
        return self

    def api_keys(self) -> list[bytes]:
        """The configured API keys as bytes (for constant-time comparison)."""
        return [k.get_secret_value().encode() for k in self.metrics_api_keys
                if k.get_secret_value()]
