"""Fixtures for integration tests: service environments on the session's real NATS/Redis."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from services.common.infra import NatsServer, RedisServer
from tests.procs import ServiceProcess, start_service


@pytest.fixture(scope="session")
def parley_env(nats_server: NatsServer, redis_server: RedisServer) -> dict[str, str]:
    """Environment every service process of this test session shares."""
    return {
        "PARLEY_NATS_URL": nats_server.url,
        "PARLEY_REDIS_URL": redis_server.url,
        "PARLEY_TOKEN_KEY": secrets.token_urlsafe(32),
        "PARLEY_HASH_KEY": secrets.token_urlsafe(32),
        "PARLEY_TURN_SECRET": secrets.token_urlsafe(32),
    }


@pytest.fixture(scope="module")
def rooms_proc(parley_env: dict[str, str]) -> Iterator[ServiceProcess]:
    """A real `parley rooms` process (uvicorn over a socket), relay TTL short for tests."""
    sp = start_service("rooms", [], {**parley_env, "PARLEY_RELAY_TTL": "3",
                                     "PARLEY_JOIN_BURST": "500", "PARLEY_JOIN_RATE": "100"})
    yield sp
    sp.stop()
