"""Unit tests of a socket's bounded outbox (with a fake websocket: no network)."""

from __future__ import annotations

import asyncio

import pytest

from services.signaling.node import Connection
from services.signaling.settings import SignalingSettings


class FakeWebSocket:
    def __init__(self, *, stuck: bool = False) -> None:
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None
        self.unblock = asyncio.Event()
        if not stuck:
            self.unblock.set()

    async def send_text(self, text: str) -> None:
        await self.unblock.wait()
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)


async def test_connection_writes_in_order_then_closes() -> None:
    ws = FakeWebSocket()
    conn = Connection(ws, max_frames=8)  # type: ignore[arg-type]
    assert conn.offer("a") and conn.offer("b")
    conn.request_close(4000, "replaced")
    assert not conn.offer("c")
    await asyncio.wait_for(conn.writer, 1)
    assert ws.sent == ["a", "b"]
    assert ws.closed == (4000, "replaced")


async def test_connection_held_until_released_with_welcome_first() -> None:
    ws = FakeWebSocket()
    conn = Connection(ws, max_frames=8)  # type: ignore[arg-type]
    conn.held = True
    conn.offer("routed-meanwhile")
    await asyncio.sleep(0)
    assert ws.sent == []
    conn.release(first="welcome")
    conn.request_close(1000, "bye")
    await asyncio.wait_for(conn.writer, 1)
    assert ws.sent == ["welcome", "routed-meanwhile"]


async def test_connection_too_slow_is_dropped_with_1013() -> None:
    ws = FakeWebSocket(stuck=True)
    conn = Connection(ws, max_frames=4)  # type: ignore[arg-type]
    results = [conn.offer(str(i)) for i in range(6)]
    assert results == [True, True, True, True, False, False]
    assert conn.close_with == (1013, "too slow; reconnect and resume")
    ws.unblock.set()
    await asyncio.wait_for(conn.writer, 1)
    assert ws.closed == (1013, "too slow; reconnect and resume")
    assert len(ws.sent) <= 1  # the frame in flight; the backlog was dropped


def test_settings_allowed_origins_from_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    mp = monkeypatch
    mp.setenv("PARLEY_ALLOWED_ORIGINS", "https://a.example, https://b.example/")
    mp.setenv("PARLEY_RESUME_GRACE", "7")
    s = SignalingSettings()
    assert s.allowed_origins == ["https://a.example", "https://b.example"]
    assert s.deadlines().grace == 7.0
    assert s.limits().max_message_bytes == 65536


def test_settings_allowed_origins_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    mp = monkeypatch
    mp.setenv("PARLEY_ALLOWED_ORIGINS", '["*"]')
    assert SignalingSettings().allowed_origins == ["*"]
