"""Trace hints: rooms names a credential by digest; the relay finds the join's traceparent."""

from __future__ import annotations

from services.common.credentials import mint_turn_credential, username_digest
from services.common.messages import TurnTraceHint
from services.relay.tracehints import TraceHints

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _hint(username: str) -> bytes:
    return TurnTraceHint(user=username_digest(username)).model_dump_json().encode()


def test_trace_hints_find_the_credential_of_a_hint() -> None:
    hints = TraceHints()
    user = mint_turn_credential("s", ttl=60, now=0).username
    assert hints.add(_hint(user), {"traceparent": PARENT}, now=0.0)
    assert hints.traceparent_for(user, now=1.0) == PARENT
    assert hints.traceparent_for("1:other", now=1.0) is None


def test_trace_hints_expire_and_stay_bounded() -> None:
    hints = TraceHints(max_hints=2, ttl=10)
    users = [f"100:{i}" for i in range(3)]
    for i, user in enumerate(users):
        hints.add(_hint(user), {"traceparent": PARENT}, now=float(i))
    assert len(hints) == 2
    assert hints.traceparent_for(users[0], now=3.0) is None  # the oldest went first
    assert hints.traceparent_for(users[2], now=3.0) == PARENT
    assert hints.traceparent_for(users[2], now=13.0) is None


def test_trace_hints_refuse_what_is_not_a_hint() -> None:
    hints = TraceHints()
    assert not hints.add(_hint("1:a"), {}, now=0)
    assert not hints.add(_hint("1:a"), {"traceparent": "00-zz"}, now=0)
    assert not hints.add(b'{"user": "1:a"}', {"traceparent": PARENT}, now=0)
    assert not hints.add(b"x" * 1000, {"traceparent": PARENT}, now=0)
    assert len(hints) == 0
