"""`parley metrics` as a real process: ingest, k-anonymous reports, refusals, privacy."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import nats
import redis.asyncio as aioredis

from services.common.infra import NatsServer, RedisServer
from services.metrics.bus import BEACON_STREAM
from services.metrics.schema import beacon_json_schema
from tests.integration.metrics.conftest import API_KEY, WEB_ORIGIN
from tests.integration.metrics.helpers import beacon, today, ua, wait_sessions
from tests.procs import ServiceProcess

AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def _post(client: httpx.AsyncClient, body: object, *, source: str, major: int = 100,
                content_type: str = "text/plain;charset=UTF-8",
                **headers: str) -> httpx.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post("/beacon", content=data, headers={
        "Content-Type": content_type, "User-Agent": ua(major), "X-Forwarded-For": source,
        **headers})


async def test_reports_nine_sessions_absent_ten_present(
    metrics_proc: ServiceProcess, redis_server: RedisServer
) -> None:
    async with httpx.AsyncClient(base_url=metrics_proc.url) as c:
        for i in range(9):
            r = await _post(c, beacon(), source=f"198.51.100.{i}", major=901)
            assert r.status_code == 204
        for i in range(10):
            failure = {"event": "connect-failure", "failure_stage": "ice"} if i < 3 else {}
            r = await _post(c, beacon(**failure), source=f"198.51.100.{20 + i}", major=902,
                      content_type="application/json")
            assert r.status_code == 204
        assert await wait_sessions(redis_server.url, "Firefox", 902, 10) == 10
        assert await wait_sessions(redis_server.url, "Firefox", 901, 9) == 9
        report = (await c.get("/reports/browsers", headers=AUTH)).json()
        rows = {(r["browser"], r["browser_major"]): r for r in report["rows"]}
        assert ("Firefox", 901) not in rows
        assert rows[("Firefox", 902)] == {"browser": "Firefox", "browser_major": 902,
                                          "os": "Linux", "sessions": 10, "failures": 3,
                                          "failure_rate": 0.3}
        assert report["suppressed"]["rows"] >= 1
        assert report["k"] == 10 and report["period"] == today()
        csv = await c.get("/reports/browsers", params={"format": "csv"}, headers=AUTH)
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert "Firefox,902,Linux,10,3,0.3" in csv.text
        assert ",901," not in csv.text
        assert int(csv.headers["x-parley-suppressed-rows"]) >= 1


async def test_reports_need_a_valid_key(metrics_proc: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=metrics_proc.url) as c:
        for path in ("/reports", "/reports/browsers", "/reports/regressions?format=csv"):
            assert (await c.get(path)).status_code == 401
            assert (await c.get(path, headers={"Authorization": "Bearer wrong"})).status_code == 401
        assert (await c.get("/reports", headers={"X-API-Key": "other-key"})).status_code == 200
        listing = (await c.get("/reports", headers=AUTH)).json()
        assert {r["name"] for r in listing["reports"]} >= {"browsers", "regressions",
                                                            "features", "connectivity"}
        assert (await c.get("/reports/nope", headers=AUTH)).status_code == 404
        r = await c.get("/reports/browsers", params={"period": "2020-01-01..2020-02-01"},
                        headers=AUTH)
        assert r.status_code == 422


async def test_beacon_too_large_is_413(metrics_proc: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=metrics_proc.url) as c:
        big = json.dumps(beacon(pad="x" * 5000)).encode()
        assert (await _post(c, big, source="198.51.100.60")).status_code == 413


async def test_beacon_unknown_fields_are_422(metrics_proc: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=metrics_proc.url) as c:
        for field, value in (("ip", "203.0.113.5"), ("room", "secret-room"),
                             ("userAgent", "Mozilla/5.0"), ("uid", "u-1")):
            r = await _post(c, beacon(**{field: value}), source="198.51.100.61")
            assert r.status_code == 422, field
            assert value not in r.text
        assert (await _post(c, b"{not json", source="198.51.100.61")).status_code == 422
        r = await _post(c, beacon(), source="198.51.100.61", content_type="application/xml")
        assert r.status_code == 415


async def test_beacon_rate_limited_per_source(metrics_proc: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=metrics_proc.url) as c:
        codes = [(await _post(c, beacon(), source="198.51.100.70", major=903)).status_code
                 for _ in range(31)]
        assert codes[:30] == [204] * 30
        assert codes[30] == 429
        r = await _post(c, beacon(), source="198.51.100.71", major=903)
        assert r.status_code == 204


async def test_beacon_same_nonce_counted_once(
    metrics_proc: ServiceProcess, redis_server: RedisServer
) -> None:
    async with httpx.AsyncClient(base_url=metrics_proc.url) as c:
        b = beacon()
        for i in range(3):
            r = await _post(c, b, source=f"198.51.100.8{i}", major=904)
            assert r.status_code == 204
        r = await _post(c, beacon(), source="198.51.100.84", major=904)
        assert r.status_code == 204
    assert await wait_sessions(redis_server.url, "Firefox", 904, 2) == 2


async def test_beacon_cors_for_the_web_origin(metrics_proc: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=metrics_proc.url) as c:
        pre = {"Origin": WEB_ORIGIN, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type"}
        r = await c.options("/beacon", headers=pre)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == WEB_ORIGIN
        r = await c.options("/beacon", headers={**pre, "Origin": "http://evil.example"})
        assert r.status_code == 400
        r = await _post(c, beacon(), source="198.51.100.90", Origin=WEB_ORIGIN)
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == WEB_ORIGIN


async def test_beacon_schema_published(metrics_proc: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=metrics_proc.url) as c:
        r = await c.get("/beacon/schema")
    assert r.status_code == 200
    assert r.json() == beacon_json_schema()


async def test_public_stats_without_key(metrics_proc: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=metrics_proc.url) as c:
        r = await c.get("/stats.json", headers={"Origin": WEB_ORIGIN})
    assert r.status_code == 200
    body = r.json()
    assert set(body["reports"]) == {"features", "families", "failure-stages", "candidates"}
    for rep in body["reports"].values():
        assert all(row["sessions"] >= 10 for row in rep["rows"])


async def test_no_ip_nor_user_agent_in_stored_data(
    metrics_proc: ServiceProcess, nats_server: NatsServer, redis_server: RedisServer
) -> None:
    marker = "ZqPrivacyMarker/1.0"
    ip = "203.0.113.77"
    b = beacon()
    async with httpx.AsyncClient(base_url=metrics_proc.url) as c:
        r = await c.post("/beacon", content=json.dumps(b).encode(), headers={
            "Content-Type": "text/plain", "User-Agent": ua(905, marker), "X-Forwarded-For": ip,
            "Sec-CH-UA": f'"{marker}";v="1"'})
        assert r.status_code == 204
        prom = (await c.get("/metrics")).text
    assert await wait_sessions(redis_server.url, "Firefox", 905, 1) == 1
    forbidden = [ip, marker, "Mozilla", "Gecko/", b["nonce"]]
    client = aioredis.from_url(redis_server.url, decode_responses=False)
    try:
        async for key in client.scan_iter("parley:metrics:*"):
            kind = (await client.type(key)).decode()
            if kind == "hash":
                blob = b"".join(k + v for k, v in (await client.hgetall(key)).items())
            elif kind == "string":
                blob = await client.get(key) or b""
            else:
                blob = b""  # seen-bitmaps hold bits only
            text = (key + blob).decode(errors="replace")
            for f in forbidden:
                assert f not in text, (f, key)
    finally:
        await client.aclose()
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(BEACON_STREAM)
        assert info.config.max_age == 48 * 3600
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            m = await js.get_msg(BEACON_STREAM, seq)
            payload = (m.data or b"").decode()
            for f in forbidden:
                assert f not in payload
            assert '"day"' in payload and ":" not in json.loads(payload)["day"]
    finally:
        await nc.close()
    for f in (ip, marker):
        assert f not in prom
        assert f not in metrics_proc.output()


async def test_beacon_too_large_chunked_is_413(metrics_proc: ServiceProcess) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * 1024

    async with httpx.AsyncClient(base_url=metrics_proc.url) as c:
        r = await c.post("/beacon", content=chunks(), headers={
            "Content-Type": "text/plain", "X-Forwarded-For": "198.51.100.62"})
    assert r.status_code == 413
