"""NATS and Redis started with a user per service (`parley dev` and the tests).

`start_secured()` makes fresh passwords (`access.Credentials.generate`), starts nats-server
with the `authorization` block of `services.common.access` (passwords only in the server's
environment) and redis-server with the matching ACL file (SHA-256 hashes, mode 0600), and
hands out each service's URLs with its own `user:password@`. Nothing here prints a password.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from services.common.access import (
    Credentials,
    render_nats_authorization,
    with_userinfo,
)
from services.common.infra import NatsServer, RedisServer

DEV_RELAY_ID: Final[str] = "dev-relay"
MAX_DEV_SFUS: Final[int] = 4


def dev_sfu_id(child: str) -> str:
    """The SFU id of a `parley dev` child (`sfu-2` -> `dev-sfu-2`)."""
    return f"dev-{child}"


DEV_SFU_IDS: Final[tuple[str, ...]] = tuple(
    dev_sfu_id(f"sfu-{i}") for i in range(1, MAX_DEV_SFUS + 1))


def dev_relay_id(child: str) -> str:
    """The relay id of a `parley dev` relay child: `relay` is `dev-relay`, `relay-2` (with
    `--relays N`) is `dev-relay-2`; the NATS user of the relays is limited to these ids."""
    _, _, number = child.partition("-")
    return f"{DEV_RELAY_ID}-{number}" if number else DEV_RELAY_ID
CREDENTIALS_FILE: Final[str] = "credentials.json"


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
        if service in self.credentials.nats:
            env["PARLEY_NATS_URL"] = self.nats_url(service)
        if service in self.credentials.redis:
            env["PARLEY_REDIS_URL"] = self.redis_url(service)
        return env

    def write_credentials(self) -> Path:
        """Every user's URLs in a JSON file only this OS user can read (for tests, debugging).

        `{"nats": {user: url}, "redis": {user: url}}`, in the NATS server's own temp dir,
        so it goes when the server stops.
        """
        doc = {"nats": {u: self.nats_url(u) for u in self.credentials.nats},
               "redis": {u: self.redis_url(u) for u in self.credentials.redis}}
        path = self.nats.workdir / CREDENTIALS_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
        return path

    def stop(self) -> None:
        self.redis.stop()
        self.nats.stop()


def start_secured(*, relay_id: str | Sequence[str] | None = None,
                  sfu_ids: tuple[str, ...] = (),
                  credentials: Credentials | None = None, store_dir: Path | None = None,
                  workdir: Path | None = None,
                  die_with_parent: bool = True) -> SecuredServers:
    """Start NATS and Redis with every service's user; the caller stops them.

    `store_dir` keeps JetStream's files across restarts (`parley serve`); passwords are
    new each time all the same. `workdir`: the servers' folders go in `workdir/nats` and
    `workdir/redis` instead of temp dirs; `die_with_parent`: see `infra.EmbeddedServer`.

    Raises:
        InfraError: a server could not be found or started.
    """
    creds = credentials or Credentials.generate()
    nats = NatsServer(config=render_nats_authorization(relay_id=relay_id, sfu_ids=sfu_ids,
                                                            admin=creds.admin),
                      env=creds.nats_server_env(), store_dir=store_dir,
                      workdir=None if workdir is None else workdir / "nats",
                      die_with_parent=die_with_parent).start()
    try:
        redis = RedisServer(acl=creds.redis_acl(),
                            workdir=None if workdir is None else workdir / "redis",
                            die_with_parent=die_with_parent).start()
    except Exception:
        nats.stop()
        raise
    return SecuredServers(nats, redis, creds)


def dev_child_env(servers: SecuredServers, child: str,
                  env: Mapping[str, str]) -> dict[str, str]:
    """One `parley dev` child's environment `env` with its own users' URLs, and no other.

    `child` is the child's name (`rooms`, `signaling-2`, `relay`, `gateway`, ...); a child
    without a NATS or Redis user (the gateway; logpurge for Redis) gets no such URL. The
    relay reads its URL as `PARLEY_RELAY_NATS_URL` (never argv: `ps` shows argv) under a
    fixed id, the one its NATS user is limited to; rooms waits for logpurge to make the
    diagnostic log, since its user may not.
    """
    service = child.split("-", 1)[0]
    out = {k: v for k, v in env.items()
           if k not in ("PARLEY_NATS_URL", "PARLEY_REDIS_URL", "PARLEY_RELAY_NATS_URL",
                        "PARLEY_SFU_NATS_URL")}
    own = servers.service_env(service)
    if service == "relay":
        out.update(PARLEY_RELAY_NATS_URL=own["PARLEY_NATS_URL"],
                   PARLEY_RELAY_RELAY_ID=dev_relay_id(child))
        return out
    if service == "sfu":
        out.update(PARLEY_SFU_NATS_URL=own["PARLEY_NATS_URL"], PARLEY_SFU_ID=dev_sfu_id(child))
        return out
    if service == "rooms":
        out["PARLEY_DIAG_CREATE"] = "false"
    return out | own


def start_dev(*, store_dir: Path | None = None, workdir: Path | None = None,
              relays: int = 1) -> SecuredServers:
    """`parley dev`'s (and `parley serve`'s) NATS and Redis: every service's user, plus
    `admin` for inspection. They die with the calling process (SIGTERM on its death) and,
    with `workdir`, keep their folders there (see `start_secured`); `respawn()` brings one
    back on the same port with the same config and users. `relays`: how many relay
    children (`relay`, or `relay-1` … `relay-N`) the relay user may speak for."""
    ids = [dev_relay_id("relay")] if relays <= 1 else [
        dev_relay_id(f"relay-{i + 1}") for i in range(relays)]
    servers = start_secured(relay_id=ids, sfu_ids=DEV_SFU_IDS,
                            credentials=Credentials.generate(admin=True),
                            store_dir=store_dir, workdir=workdir, die_with_parent=True)
    servers.write_credentials()
    return servers
