"""Every HTTP service of Parley, as a real process: security headers on every answer, no
API docs or OpenAPI schema unless enabled, and an over-long request line answered with one
log line at most (issue 15, items 5 and 9)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.procs import ServiceProcess, start_service

SERVICES = ["rooms", "signaling", "metrics", "logpurge"]
READY = {"logpurge": "/healthz"}
LONG_LINE = b"GET /" + b"a" * (70 * 1024) + b" HTTP/1.1\r\nHost: localhost\r\n\r\n"


@pytest.fixture(scope="module")
def services(parley_env: dict[str, str]) -> Iterator[dict[str, ServiceProcess]]:
    started: dict[str, ServiceProcess] = {}
    try:
        for name in SERVICES:
            started[name] = start_service(name, [], dict(parley_env),
                                          ready_path=READY.get(name, "/readyz"))
        yield started
    finally:
        for sp in started.values():
            sp.stop()


def assert_security_headers(r: httpx.Response) -> None:
    csp = r.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, (r.url, csp)
    assert r.headers.get("x-content-type-options") == "nosniff", r.url
    assert r.headers.get("referrer-policy") == "no-referrer", r.url


@pytest.mark.parametrize("path", ["/static/index.html", "/static/privacy.html",
                                  "/static/stats.html", "/", "/privacy", "/stats", "/some-room",
                                  "/static/app.js", "/config.json", "/api/docs"])
def test_rooms_pages_carry_security_headers(
    services: dict[str, ServiceProcess], path: str
) -> None:
    r = httpx.get(services["rooms"].url + path)
    assert_security_headers(r)
    if path.endswith(".html") or path in ("/", "/privacy", "/stats", "/some-room"):
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        # the web client's own policy: scripts from our origin only
        assert "script-src 'self'" in r.headers["content-security-policy"]


@pytest.mark.parametrize("name", SERVICES)
def test_service_answers_carry_security_headers(
    services: dict[str, ServiceProcess], name: str
) -> None:
    for path in ("/healthz", "/metrics", "/no-such-path/x"):
        assert_security_headers(httpx.get(services[name].url + path))


@pytest.mark.parametrize("name", SERVICES)
def test_no_api_docs_nor_openapi_by_default(
    services: dict[str, ServiceProcess], name: str
) -> None:
    for path in ("/docs", "/redoc", "/openapi.json", "/api/docs", "/api/openapi.json"):
        r = httpx.get(services[name].url + path)
        assert b"swagger" not in r.content.lower()
        assert b'"openapi"' not in r.content
        if name == "rooms" and path.count("/") == 1:
            # a room named "docs" or "openapi.json": the web client's own page
            assert r.headers["content-type"].startswith("text/html"), path
            continue
        assert r.status_code == 404, (name, path)


def test_openapi_only_when_enabled(parley_env: dict[str, str]) -> None:
    sp = start_service("rooms", [], {**parley_env, "PARLEY_OPENAPI": "true"})
    try:
        r = httpx.get(sp.url + "/api/openapi.json")
        assert r.status_code == 200 and r.json()["info"]["title"] == "Parley rooms"
        assert httpx.get(sp.url + "/api/docs").status_code == 404  # never the CDN's swagger-ui
    finally:
        sp.stop()


def _send_raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with contextlib.suppress(OSError):  # the server may stop reading early
            s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("name", SERVICES)
def test_long_request_line_one_log_line(services: dict[str, ServiceProcess], name: str) -> None:
    sp = services[name]
    before = sp.output()
    answer = _send_raw(sp.port, LONG_LINE)
    status = int(answer.split(b" ", 2)[1])
    assert status in (400, 431)
    # the service still answers, and wrote its warning (if any) before answering the line
    assert httpx.get(sp.url + "/healthz").status_code == 200
    new = sp.output()[len(before):]
    assert "Traceback" not in new
    about_it = [ln for ln in new.splitlines() if ln and "GET /healthz 200" not in ln]
    assert len(about_it) <= 1, new
