"""`parley logpurge` as a process and as a CLI, on real NATS."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from services.common.bus import NatsBus
from services.common.diaglog import DiagLog
from services.common.hashing import ip_key
from services.common.infra import NatsServer
from services.logpurge.app import ERASE_SUBJECT
from tests.procs import ServiceProcess, start_service

HASH_KEY = "svc-hash-key"
ADMIN_KEY = "admin-" + "x" * 20


@pytest.fixture(scope="module")
def lp_nats() -> Iterator[NatsServer]:
    srv = NatsServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def env(lp_nats: NatsServer) -> dict[str, str]:
    return {
        "PARLEY_NATS_URL": lp_nats.url,
        "PARLEY_HASH_KEY": HASH_KEY,
        "PARLEY_LOGPURGE_ADMIN_KEY": ADMIN_KEY,
        "PARLEY_LOGPURGE_INTERVAL": "3600",
    }


@pytest.fixture
async def diag(lp_nats: NatsServer) -> AsyncIterator[DiagLog]:
    bus = await NatsBus.connect(lp_nats.url, name="test")
    d = DiagLog(bus.js, hash_key=HASH_KEY)
    await d.ensure()
    yield d
    await bus.close()


@pytest.fixture
def service(env: dict[str, str]) -> Iterator[ServiceProcess]:
    sp = start_service("logpurge", [], env)
    yield sp
    sp.stop()


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", "logpurge", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **env},
    )


async def test_logpurge_admin_erase_needs_key(service: ServiceProcess, diag: DiagLog) -> None:
    await diag.write(ip="203.0.113.60", room="adm", service="t")
    async with httpx.AsyncClient(base_url=service.url) as c:
        r = await c.post("/admin/erase", json={"ip": "203.0.113.60"})
        assert r.status_code == 401
        r = await c.post(
            "/admin/erase", json={"ip": "203.0.113.60"}, headers={"authorization": "Bearer wrong"}
        )
        assert r.status_code == 401
        auth = {"authorization": f"Bearer {ADMIN_KEY}"}
        r = await c.post("/admin/erase", json={"ip": "203.0.113.60", "room": "x"}, headers=auth)
        assert r.status_code == 422
        r = await c.post("/admin/erase", json={"ip": "203.0.113.60"}, headers=auth)
        assert r.json() == {"removed": 1}
    assert "203.0.113.60" not in service.output()


async def test_logpurge_erase_over_nats_takes_keyed_hash(
    service: ServiceProcess, lp_nats: NatsServer, diag: DiagLog
) -> None:
    await diag.write(ip="203.0.113.61", room="natserase", service="t")
    bus = await NatsBus.connect(lp_nats.url, name="test")
    try:
        reply = await bus.nc.request(
            ERASE_SUBJECT,
            json.dumps({"ip_key": ip_key(HASH_KEY, "203.0.113.61")}).encode(),
            timeout=5,
        )
        assert json.loads(reply.data) == {"removed": 1}
        reply = await bus.nc.request(ERASE_SUBJECT, b'{"ip": "203.0.113.61"}', timeout=5)
        assert "error" in json.loads(reply.data)
    finally:
        await bus.close()


async def test_logpurge_readiness_fails_when_overdue(
    service: ServiceProcess, diag: DiagLog
) -> None:
    async with httpx.AsyncClient(base_url=service.url) as c:
        assert (await c.get("/readyz")).status_code == 200
        # a record past retention + 2 intervals that no purge has removed yet
        await diag.write(
            ip="192.0.2.3", room="late", service="t", now=time.time() - 30 * 86400 - 3 * 3600
        )
        r = await c.get("/readyz")
        assert r.status_code == 503 and r.json()["overdue"] is True
        metrics = (await c.get("/metrics")).text
        assert "parley_diaglog_oldest_record_age_seconds" in metrics


async def test_logpurge_cli_status_erase_lookup_run_once(
    env: dict[str, str], diag: DiagLog
) -> None:
    await diag.write(ip="198.51.100.20", room="cli-room", service="t")
    await diag.write(ip="198.51.100.21", room="cli-room", service="t")
    await diag.write(ip="198.51.100.22", room="cli-old", service="t", now=time.time() - 31 * 86400)
    st = json.loads((await asyncio.to_thread(cli, env, "status")).stdout)
    assert st["records"] >= 3
    out = await asyncio.to_thread(cli, env, "lookup", "--room", "CLI-Room")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert sorted(r["ip"] for r in rows) == ["198.51.100.20", "198.51.100.21"]
    out = await asyncio.to_thread(cli, env, "run-once")
    assert json.loads(out.stdout)["removed"] >= 1
    out = await asyncio.to_thread(cli, env, "erase", "--room", "cli-room")
    assert json.loads(out.stdout) == {"removed": 2}
    bad = await asyncio.to_thread(cli, env, "erase")
    assert bad.returncode == 2 and "exactly one of --ip or --room" in bad.stderr
