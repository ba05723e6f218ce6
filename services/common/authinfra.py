"""NATS and Redis started with a user per service (`parley dev` and the tests).

`start_secured()` makes fresh passwords (`access.Credentials.generate`), starts nats-server
with the `authorization` block of `services.common.access` (passwords only in the server's
environment) and redis-server with the matching ACL file (SHA-256 hashes, mode 0600), and
hands out each service's URLs with its own `user:password@`. Nothing here prints a password.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.access import (
    NATS_USERS,
    REDIS_USERS,
    Credentials,
    render_nats_authorization,
    with_userinfo,
)
from services.common.infra import NatsServer, RedisServer


@dataclass
class SecuredServers:
    """A running NATS and Redis with per-service users, and those users' passwords."""

    nats: NatsServer
    redis: RedisServer
    credentials: Credentials

    def nats_url(self, user: str) -> str:
        """The NATS URL for `user` (one of `access.NATS_USERS`), password included."""
        return with_userinfo(self.nats.url, user, self.credentials.nats[user])

    def redis_url(self, user: str) -> str:
        """The Redis URL for `user` (one of `access.REDIS_USERS`), password included."""
        return with_userinfo(self.redis.url, user, self.credentials.redis[user]) + "/0"

    def service_env(self, service: str) -> dict[str, str]:
        """`PARLEY_NATS_URL` / `PARLEY_REDIS_URL` for one service (what it has a user for)."""
        env: dict[str, str] = {}
        if service in NATS_USERS:
            env["PARLEY_NATS_URL"] = self.nats_url(service)
        if service in REDIS_USERS:
            env["PARLEY_REDIS_URL"] = self.redis_url(service)
        return env

    def stop(self) -> None:
        self.redis.stop()
        self.nats.stop()


def start_secured(*, relay_id: str | None = None,
                  credentials: Credentials | None = None) -> SecuredServers:
    """Start NATS and Redis with every service's user; the caller stops them.

    Raises:
        InfraError: a server could not be found or started.
    """
    creds = credentials or Credentials.generate()
    nats = NatsServer(config=render_nats_authorization(relay_id=relay_id),
                      env=creds.nats_server_env()).start()
    try:
        redis = RedisServer(acl=creds.redis_acl()).start()
    except Exception:
        nats.stop()
        raise
    return SecuredServers(nats, redis, creds)
