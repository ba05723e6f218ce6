"""The chart gives every service its own NATS user and Redis user, from the one table.

The chart's files/ must equal what `services/common/access.py` renders (so permissions
cannot drift from the code), each workload must get its own URLs, and the rendered NATS
config and Redis ACL must work on real servers with the rendered Secret's credentials.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nats
import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoPermissionError

from services.common import access
from services.common.infra import NatsServer, RedisServer
from tests.chart.conftest import CHART, Manifest

EXTERNAL = CHART / "ci" / "external-services-values.yaml"
SERVICES = {"rooms": "Deployment", "signaling": "Deployment", "metrics": "Deployment",
            "logpurge": "Deployment", "operator": "Deployment"}


def _secret(manifests: tuple[Manifest, ...]) -> dict[str, str]:
    (conn,) = [m for m in manifests if m["metadata"]["name"] == "parley-connections"]
    return {k: base64.b64decode(v).decode() for k, v in conn["data"].items()}


def _env(manifests: tuple[Manifest, ...], name: str) -> dict[str, Any]:
    (dep,) = [m for m in manifests if m["kind"] in ("Deployment", "StatefulSet")
              and m["metadata"]["name"] == name]
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def _local(url: str, port: int) -> str:
    """A URL of the rendered Secret pointed at a server on this machine."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@127.0.0.1:{port}"))


def test_chart_files_equal_the_access_table() -> None:
    assert (CHART / "files" / access.CHART_NATS_FILE).read_text() == \
        access.render_nats_authorization()
    assert (CHART / "files" / access.CHART_REDIS_FILE).read_text() == access.render_redis_acl(
        lambda u: access.CHART_HASH_PLACEHOLDER.format(user=u.upper()))


def test_chart_gives_each_service_its_own_urls(render: Any) -> None:
    manifests = render()
    for service in SERVICES:
        env = _env(manifests, f"parley-{service}")
        assert env["PARLEY_NATS_URL"]["secretKeyRef"]["key"] == f"{service}NatsUrl"
        redis_ref = env.get("PARLEY_REDIS_URL")
        if service in access.REDIS_USERS:
            assert redis_ref["secretKeyRef"]["key"] == f"{service}RedisUrl"
        else:
            assert redis_ref is None, service
    operator = _env(manifests, "parley-operator")
    assert operator["PARLEY_OPERATOR_RELAY_NATS_URL"] == "secret:parley-connections/relayNatsUrl"
    assert _env(manifests, "parley-rooms")["PARLEY_DIAG_CREATE"] == "false"
    secret = _secret(manifests)
    for user in access.NATS_USERS:
        assert urlsplit(secret[f"{user}NatsUrl"]).username == user
        assert urlsplit(secret[f"{user}NatsUrl"]).password == secret[f"{user}NatsPassword"]
    for user in access.REDIS_USERS:
        assert urlsplit(secret[f"{user}RedisUrl"]).username == user
    assert "natsToken" not in secret and "redisPassword" not in secret


def test_chart_with_external_services_uses_their_urls(render: Any) -> None:
    manifests = render(EXTERNAL)
    secret = _secret(manifests)
    assert {secret[f"{u}NatsUrl"] for u in access.NATS_USERS} == {secret["natsUrl"]}
    assert {secret[f"{u}RedisUrl"] for u in access.REDIS_USERS} == {secret["redisUrl"]}
    assert not [k for k in secret if k.endswith("Password") or k == "redisUsersAcl"]
    assert _env(manifests, "parley-rooms")["PARLEY_DIAG_CREATE"] == "true"


def _nats_server_env(manifests: tuple[Manifest, ...], secret: dict[str, str]) -> dict[str, str]:
    """The NATS container's PARLEY_NATS_PASSWORD_* as the kubelet expands them."""
    env = _env(manifests, "parley-nats")
    out = {}
    for name, value in env.items():
        if name.startswith("PARLEY_NATS_PASSWORD_"):
            raw = re.fullmatch(r'"\$\((\w+)\)"', value)
            assert raw, value
            key = env[raw.group(1)]["secretKeyRef"]["key"]
            out[name] = f'"{secret[key]}"'
    return out


async def test_chart_nats_config_and_redis_acl_work_on_real_servers(render: Any) -> None:
    manifests = render()
    secret = _secret(manifests)
    (cm,) = [m for m in manifests if m["kind"] == "ConfigMap"
             and m["metadata"]["name"] == "parley-nats"]
    block = cm["data"]["nats.conf"]
    block = block[block.index("authorization {"):block.index("jetstream {")]
    nats_srv = NatsServer(config=block, env=_nats_server_env(manifests, secret)).start()
    redis_srv = RedisServer(acl=secret["redisUsersAcl"]).start()
    try:
        for user in access.NATS_USERS:
            nc = await nats.connect(_local(secret[f"{user}NatsUrl"], nats_srv.port),
                                    allow_reconnect=False)
            await nc.close()
        for user in access.REDIS_USERS:
            client = aioredis.from_url(_local(secret[f"{user}RedisUrl"], redis_srv.port))
            try:
                assert await client.ping() is True
                if user == "health":
                    with pytest.raises(NoPermissionError):
                        await client.get("parley:room:{r}:meta")
            finally:
                await client.aclose()
        anonymous = aioredis.from_url(redis_srv.url)
        with pytest.raises(AuthenticationError):
            await anonymous.ping()
        await anonymous.aclose()
    finally:
        redis_srv.stop()
        nats_srv.stop()
