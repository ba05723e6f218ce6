"""Rooms' /api POSTs refuse what a foreign page could make a browser send (issue 15, item 4).

A form-encoded, text or empty body, or an Origin that is neither the request's own nor
listed in PARLEY_ALLOWED_ORIGINS, is refused before any handler runs: no slot is taken and
no diagnostic record pairs the visitor's address with a room the attacker chose.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from services.common import subjects
from services.common.bus import NatsBus
from services.common.hashing import room_key
from tests.procs import ServiceProcess, start_service

EVIL = "https://evil.example"
FRIEND = "https://friend.example"


@pytest.fixture(scope="module")
def guarded_rooms(parley_env: dict[str, str]) -> Iterator[ServiceProcess]:
    sp = start_service("rooms", [], {**parley_env, "PARLEY_ALLOWED_ORIGINS": f"{FRIEND}/",
                                     "PARLEY_JOIN_BURST": "500", "PARLEY_JOIN_RATE": "100"})
    yield sp
    sp.stop()


@pytest.fixture
async def raw(guarded_rooms: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=guarded_rooms.url, timeout=10) as c:
        yield c


async def _diag_records(bus: NatsBus, hash_key: str, room: str) -> int:
    info = await bus.js.stream_info(
        subjects.DIAG_STREAM,
        subjects_filter=subjects.diag_filter(room_key=room_key(hash_key, room)),
    )
    return sum((info.state.subjects or {}).values())


def _room() -> str:
    return f"xs-{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"password=x", {"content-type": "application/x-www-form-urlencoded"}),
        (b"", {}),
        (b'{"password": null}', {"content-type": "text/plain"}),
        (b"--b--", {"content-type": "multipart/form-data; boundary=b"}),
    ],
    ids=["form", "empty-no-type", "text-plain", "multipart"],
)
async def test_join_not_json_415_and_no_record(
    raw: httpx.AsyncClient, bus: NatsBus, parley_env: dict[str, str],
    content: bytes, headers: dict[str, str],
) -> None:
    room = _room()
    r = await raw.post(f"/api/rooms/{room}/join", content=content, headers=headers)
    assert r.status_code == 415
    assert r.json() == {
        "detail": "the request body must be JSON (Content-Type: application/json)"}
    assert await _diag_records(bus, parley_env["PARLEY_HASH_KEY"], room) == 0


async def test_join_foreign_origin_403_and_no_record(
    raw: httpx.AsyncClient, bus: NatsBus, parley_env: dict[str, str]
) -> None:
    room = _room()
    for content, ctype in ((b"", "application/x-www-form-urlencoded"), (b"{}", "application/json")):
        r = await raw.post(f"/api/rooms/{room}/join", content=content,
                           headers={"origin": EVIL, "content-type": ctype})
        assert r.status_code == 403
        assert r.json() == {"detail": "cross-origin request refused: this Origin is not "
                                      "allowed (PARLEY_ALLOWED_ORIGINS)"}
    assert await _diag_records(bus, parley_env["PARLEY_HASH_KEY"], room) == 0
    # the room was not touched either: the full capacity is still free
    ok = await raw.post(f"/api/rooms/{room}/join", json={})
    assert ok.status_code == 200
    assert ok.json()["owner_key"] is not None
    assert await _diag_records(bus, parley_env["PARLEY_HASH_KEY"], room) == 1


@pytest.mark.parametrize("path", ["/api/rooms", "/api/rooms/r-1/lock", "/api/rooms/r-1/unlock",
                                  "/api/rooms/r-1/leave"])
async def test_every_api_post_refuses_foreign_origin(raw: httpx.AsyncClient, path: str) -> None:
    r = await raw.post(path, json={}, headers={"origin": EVIL})
    assert r.status_code == 403
    r = await raw.post(path, content=b"", headers={"origin": "null"})
    assert r.status_code == 403
    r = await raw.post(path, content=b"")
    assert r.status_code == 415


async def test_join_allowed_origins(raw: httpx.AsyncClient, guarded_rooms: ServiceProcess) -> None:
    own = f"http://127.0.0.1:{guarded_rooms.port}"
    for origin in (own, FRIEND, None):
        headers = {"origin": origin} if origin else {}
        r = await raw.post(f"/api/rooms/{_room()}/join", json={}, headers=headers)
        assert r.status_code == 200, origin
    # same host name on another port is another origin
    other_port = f"http://127.0.0.1:{guarded_rooms.port + 1}"
    r = await raw.post(f"/api/rooms/{_room()}/join", json={}, headers={"origin": other_port})
    assert r.status_code == 403


async def test_create_room_json_body_201(raw: httpx.AsyncClient) -> None:
    r = await raw.post("/api/rooms", json={})
    assert r.status_code == 201
    r = await raw.post("/api/rooms", content=b"", headers={"content-type": "application/json"})
    assert r.status_code == 201


def test_public_url_origin_allowed(parley_env: dict[str, str]) -> None:
    sp = start_service("rooms", [], {**parley_env, "PARLEY_PUBLIC_URL": "https://chat.example"})
    try:
        for origin, status in (("https://chat.example", 200), (EVIL, 403)):
            r = httpx.post(f"{sp.url}/api/rooms/{_room()}/join", json={},
                           headers={"origin": origin})
            assert r.status_code == status, origin
    finally:
        sp.stop()
