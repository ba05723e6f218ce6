"""The presence cases of the unit tests, against the real Redis scripts."""

from __future__ import annotations

import secrets

import pytest
import redis.asyncio as aioredis

from services.signaling.presence import RedisPresence
from tests.unit.signaling.presence_cases import CASES, DEADLINES, Case


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
async def test_redis_presence_case(case: Case, redis: aioredis.Redis) -> None:
    await case(RedisPresence(redis, DEADLINES), secrets.token_urlsafe(12))
