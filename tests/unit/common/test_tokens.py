from __future__ import annotations

import pytest

from services.common.tokens import TokenError, TokenExpired, issue_join_token, verify_join_token

KEY = "k" * 32


def test_verify_join_token_roundtrip() -> None:
    token = issue_join_token(KEY, room="hello", room_key="rk1", peer_id="p1", owner=True, now=1000)
    claims = verify_join_token(KEY, token, now=1001)
    assert (claims.room, claims.room_key, claims.peer_id, claims.owner) == (
        "hello",
        "rk1",
        "p1",
        True,
    )
    assert claims.expires_at == 1000 + 120


def test_verify_join_token_expired() -> None:
    token = issue_join_token(KEY, room="r", room_key="rk", peer_id="p", ttl=10, now=1000)
    with pytest.raises(TokenExpired):
        verify_join_token(KEY, token, now=1010)


def test_verify_join_token_expired_allowed_for_leave() -> None:
    token = issue_join_token(KEY, room="r", room_key="rk", peer_id="p", ttl=10, now=1000)
    assert verify_join_token(KEY, token, now=5000, allow_expired=True).peer_id == "p"


def test_verify_join_token_wrong_key() -> None:
    token = issue_join_token(KEY, room="r", room_key="rk", peer_id="p", now=1000)
    with pytest.raises(TokenError, match="invalid token"):
        verify_join_token("x" * 32, token, now=1001)


def test_verify_join_token_tampered() -> None:
    token = issue_join_token(KEY, room="r", room_key="rk", peer_id="p", now=1000)
    head, body, sig = token.split(".")
    with pytest.raises(TokenError):
        verify_join_token(KEY, f"{head}.{body}x.{sig}", now=1001)


@pytest.mark.parametrize("bad", ["", "x" * 5000, "not-a-jwt"])
def test_verify_join_token_malformed(bad: str) -> None:
    with pytest.raises(TokenError):
        verify_join_token(KEY, bad, now=1001)


def test_verify_join_token_real_clock() -> None:
    token = issue_join_token(KEY, room="r", room_key="rk", peer_id="p")
    assert verify_join_token(KEY, token).peer_id == "p"
