"""The relay's control requests over NATS: a valid one reaches the relay, a malformed or
oversized one is ignored with one warning line (the handler alone; the NATS round trip is
in tests/integration/relay/test_relay_lifecycle.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from services.common.messages import RelayControl
from services.common.heartbeat import MAX_CONTROL_BYTES
from services.relay.bus import FleetLink, make_heartbeat


@dataclass
class Msg:
    """What a NATS subscription hands the handler: only `data` is read."""

    data: bytes


def _link(seen: list[RelayControl]) -> FleetLink:
    return FleetLink("", "relay-a", interval=1.0,
                     heartbeat=lambda: make_heartbeat(relay_id="relay-a", public_host="h"),
                     on_control=seen.append)


def test_valid_request_reaches_the_relay() -> None:
    seen: list[RelayControl] = []
    asyncio.run(_link(seen)._control(Msg(b'{"action": "drain", "deadline_seconds": 5}')))
    assert seen == [RelayControl(action="drain", deadline_seconds=5)]


@pytest.mark.parametrize("data", [b"{not json", b'{"action": "explode"}',
                                  b'{"action": "drain", "x": "' + b"a" * MAX_CONTROL_BYTES
                                  + b'"}'])
def test_malformed_or_oversized_request_is_ignored(data: bytes,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    seen: list[RelayControl] = []
    asyncio.run(_link(seen)._control(Msg(data)))
    assert seen == []
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "Traceback" not in caplog.text
