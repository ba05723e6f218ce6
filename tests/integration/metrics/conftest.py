"""Fixtures for the metrics service against real NATS and Redis."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from services.common.infra import NatsServer, RedisServer
from tests.procs import ServiceProcess, start_service

API_KEY = secrets.token_urlsafe(24)
WEB_ORIGIN = "http://web.example"


def metrics_env(nats_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """Environment of a metrics process for tests: reports of the current day allowed."""
    env = {
        "PARLEY_NATS_URL": nats_url,
        "PARLEY_REDIS_URL": redis_url,
        "PARLEY_METRICS_API_KEYS": f"other-key,{API_KEY}",
        "PARLEY_METRICS_PERIOD": "day",
        "PARLEY_METRICS_INCLUDE_CURRENT_PERIOD": "true",
        "PARLEY_METRICS_RATE": "1",
        "PARLEY_METRICS_BURST": "30",
        "PARLEY_TRUSTED_PROXIES": "127.0.0.1/32",
        "PARLEY_METRICS_ALLOWED_ORIGINS": WEB_ORIGIN,
        "PARLEY_LOG_LEVEL": "warning",
    }
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def metrics_proc(nats_server: NatsServer, redis_server: RedisServer) -> Iterator[ServiceProcess]:
    """A real `parley metrics` process on the session's NATS and Redis."""
    sp = start_service("metrics", [], metrics_env(nats_server.url, redis_server.url))
    yield sp
    sp.stop()
