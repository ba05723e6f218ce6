"""New sockets are rate-limited per client address (trusted proxies' X-Forwarded-For)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import websockets

from services.common.infra import NatsServer, RedisServer
from tests.integration.signaling.conftest import Replica


@pytest.fixture
def strict_replica(nats_server: NatsServer, redis_server: RedisServer) -> Iterator[Replica]:
    r = Replica(nats_server.url, redis_server.url,
                env={"PARLEY_CONNECT_BURST": "3", "PARLEY_CONNECT_RATE": "0.01",
                     "PARLEY_TRUSTED_PROXIES": "127.0.0.1/32"}).start()
    yield r
    r.stop()


async def _open(url: str, xff: str) -> int:
    try:
        async with websockets.connect(url, additional_headers={"X-Forwarded-For": xff}):
            return 101
    except websockets.InvalidStatus as exc:
        return int(exc.response.status_code)


async def test_connect_rate_per_client_address(strict_replica: Replica) -> None:
    codes = [await _open(strict_replica.ws, "203.0.113.5") for _ in range(5)]
    assert codes == [101, 101, 101, 403, 403]
    # another address behind the same trusted proxy has its own budget
    assert await _open(strict_replica.ws, "203.0.113.6") == 101
    log = strict_replica.log.read_text()
    assert "203.0.113" not in log
