"""The gateway over real sockets: routing, forwarded headers, limits, websockets, TLS."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import h11
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from services.common.infra import free_port
from services.gateway.cli import tls_context
from services.gateway.proxy import Gateway, Limits
from services.gateway.routing import RouteTable
from tests.certs import make_certificate

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def echo_upstream(name: str) -> Handler:
    """An HTTP/1.1 upstream that answers with what it received, as JSON."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        assert request is not None
        answer = json.dumps({
            "upstream": name, "target": request.target.decode(),
            "headers": [[k.decode(), v.decode()] for k, v in request.headers.raw_items()],
            "body": len(body)}).encode()
        writer.write(conn.send(h11.Response(status_code=200, headers=[
            ("content-type", "application/json"), ("content-length", str(len(answer))),
            ("connection", "close")])))
        writer.write(conn.send(h11.Data(data=answer)) or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        await writer.drain()
        writer.close()

    return handle


async def ws_echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(f"echo {message} host={ws.request.headers['Host'] if ws.request else ''}")


class Rig:
    """Upstreams "rooms", "metrics" (HTTP echo) and "signaling" (websocket echo) behind a
    gateway on 127.0.0.1."""

    def __init__(self) -> None:
        self.servers: list[asyncio.Server] = []
        self.url = ""
        self.port = 0

    async def start(self, *, trusted: list[str], tls: ssl.SSLContext | None = None,
                    limits: Limits | None = None, dead_metrics: bool = False) -> None:
        ports = {}
        for name in ("rooms", "metrics"):
            ports[name] = free_port()
            if name == "metrics" and dead_metrics:
                continue
            self.servers.append(await asyncio.start_server(
                echo_upstream(name), "127.0.0.1", ports[name]))
        ports["signaling"] = free_port()
        self.ws_server = await serve(ws_echo, "127.0.0.1", ports["signaling"])
        table = RouteTable.ingress({k: [f"127.0.0.1:{p}"] for k, p in ports.items()})
        self.port = free_port()
        self.servers.append(await Gateway(table, trusted=trusted, tls=tls,
                                          limits=limits).start("127.0.0.1", self.port))
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        for s in self.servers:
            s.close()
        self.ws_server.close()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = Rig()
    await r.start(trusted=[], limits=Limits(max_body=4096), dead_metrics=False)
    yield r
    await r.stop()


def headers_of(body: dict[str, object]) -> dict[str, str]:
    return dict(body["headers"])  # type: ignore[attr-defined]


async def test_gateway_routes_like_the_ingress(rig: Rig) -> None:
    async with httpx.AsyncClient(base_url=rig.url) as c:
        got = {path: (await c.get(path)).json()["upstream"]
               for path in ("/", "/amber-otter-1", "/api/rooms", "/beacon", "/beacon/schema",
                            "/reports/x", "/stats.json", "/stats", "/beaconx", "/wsx")}
    assert got == {"/": "rooms", "/amber-otter-1": "rooms", "/api/rooms": "rooms",
                   "/beacon": "metrics", "/beacon/schema": "metrics", "/reports/x": "metrics",
                   "/stats.json": "metrics", "/stats": "rooms", "/beaconx": "rooms",
                   "/wsx": "rooms"}


async def test_gateway_forwarded_headers_from_untrusted_peer_replaced(rig: Rig) -> None:
    async with httpx.AsyncClient(base_url=rig.url) as c:
        body = (await c.post("/api/rooms", content=b"{}", headers={
            "Host": "chat.example.org", "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https", "X-Parley-Local-Addr": "198.51.100.1",
            "Connection": "keep-alive, X-Secret", "X-Secret": "hop"})).json()
    h = headers_of(body)
    assert h["host"] == "chat.example.org"
    assert h["x-forwarded-for"] == "127.0.0.1"
    assert h["x-forwarded-proto"] == "http"
    assert h["x-forwarded-host"] == "chat.example.org"
    assert h["x-parley-local-addr"] == "127.0.0.1"
    assert "x-secret" not in h and "connection" not in h
    assert body["body"] == 2


async def test_gateway_forwarded_headers_from_trusted_proxy_kept() -> None:
    r = Rig()
    await r.start(trusted=["127.0.0.0/8"])
    try:
        async with httpx.AsyncClient(base_url=r.url) as c:
            body = (await c.get("/", headers={
                "X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https",
                "X-Parley-Local-Addr": "198.51.100.1"})).json()
    finally:
        await r.stop()
    h = headers_of(body)
    assert h["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert h["x-forwarded-proto"] == "https"
    assert h["x-parley-local-addr"] == "198.51.100.1"


async def test_gateway_keep_alive_serves_several_requests(rig: Rig) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
    conn = h11.Connection(h11.CLIENT)
    answers = []
    for target in ("/", "/beacon"):
        writer.write(conn.send(h11.Request(method="GET", target=target,
                                           headers=[("host", "x")])) or b"")
        writer.write(conn.send(h11.EndOfMessage()) or b"")
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        answers.append(json.loads(body)["upstream"])
        conn.start_next_cycle()
    writer.close()
    assert answers == ["rooms", "metrics"]


async def test_gateway_body_too_large_413(rig: Rig) -> None:
    async with httpx.AsyncClient(base_url=rig.url) as c:
        declared = await c.post("/api/rooms", content=b"x" * 5000)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"x" * 1000

        streamed = await c.post("/api/rooms", content=chunks())
    assert (declared.status_code, streamed.status_code) == (413, 413)


async def test_gateway_head_too_large_431(rig: Rig) -> None:
    async with httpx.AsyncClient(base_url=rig.url) as c:
        r = await c.get("/", headers={"X-Big": "x" * 70_000})
    assert r.status_code == 431


async def test_gateway_upstream_down_502() -> None:
    r = Rig()
    await r.start(trusted=[], dead_metrics=True, limits=Limits(restart_wait=0.3))
    loop = asyncio.get_running_loop()
    try:
        async with httpx.AsyncClient(base_url=r.url) as c:
            began = loop.time()
            down = await c.get("/beacon")
            waited = loop.time() - began
            up = await c.get("/")
    finally:
        await r.stop()
    assert (down.status_code, down.text) == (502, "502 service unavailable\n")
    assert waited >= 0.2  # it waited for a restart that did not come, then answered
    assert up.status_code == 200


async def test_gateway_websocket_round_trip(rig: Rig) -> None:
    async with connect(f"ws://127.0.0.1:{rig.port}/ws",
                       additional_headers={"Origin": "http://127.0.0.1"}) as ws:
        await ws.send("hello")
        answer = await asyncio.wait_for(ws.recv(), 5)
        await ws.send("again")
        again = await asyncio.wait_for(ws.recv(), 5)
    assert (answer, again) == (f"echo hello host=127.0.0.1:{rig.port}",
                               f"echo again host=127.0.0.1:{rig.port}")


async def test_gateway_tls_http_and_websocket(tmp_path: Path) -> None:
    cert = make_certificate(tmp_path, names=["localhost"], ips=["127.0.0.1"])
    r = Rig()
    await r.start(trusted=[], tls=tls_context(cert.cert, cert.key))
    client_ctx = ssl.create_default_context(cafile=str(cert.ca))
    try:
        async with httpx.AsyncClient(base_url=r.url, verify=client_ctx) as c:
            body = (await c.get("/")).json()
        async with connect(f"wss://127.0.0.1:{r.port}/ws", ssl=client_ctx) as ws:
            await ws.send("over tls")
            answer = await asyncio.wait_for(ws.recv(), 5)
    finally:
        await r.stop()
    assert headers_of(body)["x-forwarded-proto"] == "https"
    assert answer == f"echo over tls host=127.0.0.1:{r.port}"


@pytest.mark.parametrize(("args", "message"), [
    (["--route", "ws=x"], "parley: expected /PREFIX=HOST:PORT[,HOST:PORT...], got 'ws=x'"),
    (["--route", "/=127.0.0.1:1", "--trusted-proxy", "lan"],
     "parley: --trusted-proxy: not a CIDR: 'lan'"),
    (["--route", "/=127.0.0.1:1", "--tls-cert", "/nonexistent.pem"],
     "parley: --tls-cert and --tls-key go together"),
    ([], "parley: no --route given"),
])
def test_gateway_cli_bad_options_one_line(args: list[str], message: str) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "services", "gateway", *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stderr.strip()) == (2, message)


async def test_gateway_dead_upstream_passes_to_the_next() -> None:
    """Two signalling replicas, one dead (killed, not back yet): every connection reaches
    the live one instead of failing every other time."""
    live = free_port()
    server = await serve(ws_echo, "127.0.0.1", live)
    table = RouteTable.ingress({"signaling": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{live}"],
                                "rooms": [f"127.0.0.1:{free_port()}"]})
    port = free_port()
    gateway = await Gateway(table, trusted=[]).start("127.0.0.1", port)
    try:
        for _ in range(3):
            async with connect(f"ws://127.0.0.1:{port}/ws",
                               additional_headers={"Origin": "http://127.0.0.1"}) as ws:
                await ws.send("hi")
                assert (await asyncio.wait_for(ws.recv(), 5)).startswith("echo hi")
    finally:
        gateway.close()
        server.close()


async def test_gateway_every_upstream_refusing_waits_for_one_to_restart() -> None:
    """The only signalling replica (or every one) is restarting: a websocket handshake that
    arrives meanwhile is held and served as soon as the replica listens again, rather than
    answered 502 (a bare 1006 for a browser, which then waits out its own backoff)."""
    port, upstream = free_port(), free_port()
    table = RouteTable.ingress({"signaling": [f"127.0.0.1:{upstream}"],
                                "rooms": [f"127.0.0.1:{free_port()}"]})
    gateway = await Gateway(table, trusted=[], limits=Limits(restart_wait=10.0)).start(
        "127.0.0.1", port)
    servers = []

    async def restart_later() -> None:
        await asyncio.sleep(0.5)
        servers.append(await serve(ws_echo, "127.0.0.1", upstream))

    loop = asyncio.get_running_loop()
    began = loop.time()
    back = asyncio.ensure_future(restart_later())
    try:
        async with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10,
                           additional_headers={"Origin": "http://127.0.0.1"}) as ws:
            await ws.send("hi")
            answer = await asyncio.wait_for(ws.recv(), 5)
        took = loop.time() - began
    finally:
        await back
        gateway.close()
        for server in servers:
            server.close()
    assert str(answer).startswith("echo hi")
    assert 0.5 <= took < 5.0
