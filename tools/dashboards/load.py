"""A short, real load on a running `parley dev` through its public port: joins, websockets
that join, talk and leave, beacons, and (optionally) calls through the relay, so that every
dashboard panel has something to show."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

BEACON = {"v": 1, "event": "session-end", "local_candidate": "host",
          "remote_candidate": "srflx", "protocol": "udp", "duration": "1-5m", "peers": "2"}


def _post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"content-type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, None


def join(port: int, room: str) -> dict[str, Any]:
    """POST /api/rooms/<room>/join; the answer (raises on anything but 200)."""
    status, answer = _post(f"http://127.0.0.1:{port}/api/rooms/{room}/join", b"{}")
    if status != 200:
        raise RuntimeError(f"join answered {status}")
    result: dict[str, Any] = answer
    return result


def beacon(port: int, *, valid: bool = True) -> int:
    """POST /beacon (a text/plain body, as sendBeacon sends it); the status."""
    body = dict(BEACON, nonce=secrets.token_urlsafe(16))
    if not valid:
        body["peers"] = "many"  # not in the schema: a 422
    return _post(f"http://127.0.0.1:{port}/beacon", json.dumps(body).encode(), "text/plain")[0]


async def _until(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next message of type `kind` (within 10 s)."""
    async with asyncio.timeout(10):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message.get("type") == kind:
                return message


def create_room(port: int) -> str:
    """POST /api/rooms (the start page's "new room"); the room's name."""
    status, answer = _post(f"http://127.0.0.1:{port}/api/rooms", b"")
    if status != 201:
        raise RuntimeError(f"create answered {status}")
    return str(answer["name"])


async def call(port: int, *, hold: float = 0.0, peers: int = 2, create: bool = False) -> None:
    """`peers` people join one new room (made with POST /api/rooms when `create`) over the
    websocket, change their media state, stay `hold` seconds, then leave (the first with
    `leave`, the others by closing)."""
    try:
        room = create_room(port) if create else f"load-{secrets.token_hex(4)}"
    except RuntimeError:
        return
    origin = {"Origin": f"http://127.0.0.1:{port}"}
    sockets: list[ClientConnection] = []
    try:
        for _ in range(peers):
            try:
                answer = join(port, room)
            except RuntimeError:
                break  # refused (rate-limited, full): the dashboards show it; stop here
            ws = await connect(f"ws://127.0.0.1:{port}/ws", additional_headers=origin)
            sockets.append(ws)
            await ws.send(json.dumps({"type": "join", "token": answer["token"], "room": room}))
            await _until(ws, "welcome")
        for ws in sockets:
            await ws.send(json.dumps({"type": "media-state", "audio": True, "video": False,
                                      "screen": False}))
            await ws.send(json.dumps({"type": "ping"}))
            await _until(ws, "pong")
        if hold:
            await asyncio.sleep(hold)
        if sockets:
            await sockets[0].send(json.dumps({"type": "leave"}))
    finally:
        for ws in sockets:
            await ws.close()


def relay_clients(host: str, port: int, username: str, credential: str, *, clients: int = 2,
                  messages: int = 200, interval_ms: int = 50, timeout: float = 120.0) -> bool:
    """coturn's `turnutils_uclient`: `clients` pairs of allocations on the relay sending to
    each other with Send indications (`-y -s`), `messages` each, every `interval_ms`; holds
    allocations for seconds, unlike a probe. False when it failed or is not installed."""
    try:
        proc = subprocess.run(
            ["turnutils_uclient", "-y", "-c", "-s", "-m", str(clients), "-n", str(messages),
             "-z", str(interval_ms), "-l", "160", "-u", username, "-w", credential,
             "-p", str(port), host],
            capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def relay_probe(host: str, port: int, secret: str, timeout: float = 60.0) -> bool:
    """`parley relay probe`: a real WebRTC call through the relay (packets and bytes)."""
    proc = subprocess.run([sys.executable, "-m", "services", "relay", "probe",
                           f"{host}:{port}", "--secret", secret],
                          capture_output=True, text=True, timeout=timeout, check=False)
    return proc.returncode == 0


async def short_load(port: int, *, calls: int = 2, beacons: int = 3) -> None:
    """The tests' load: a few calls at once, valid beacons and one refused."""
    await asyncio.gather(*(call(port, create=i == 0) for i in range(calls)))
    for _ in range(beacons):
        beacon(port)
    beacon(port, valid=False)
