from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

from services.common.credentials import (
    candidate_passwords,
    mint_turn_credential,
    turn_password,
    username_expiry,
)


def test_turn_password_matches_coturn_scheme() -> None:
    # coturn use-auth-secret: base64(hmac-sha1(secret, username))
    expected = base64.b64encode(
        hmac.new(b"north", b"1700000000:alice", hashlib.sha1).digest()
    ).decode()
    assert turn_password("north", "1700000000:alice") == expected


def test_mint_turn_credential_shape() -> None:
    cred = mint_turn_credential("s3cret", ttl=600, now=1000)
    expiry, _, rid = cred.username.partition(":")
    assert int(expiry) == 1600 == cred.expires_at
    assert len(rid) >= 12
    assert cred.password == turn_password("s3cret", cred.username)


def test_mint_turn_credential_unique() -> None:
    assert mint_turn_credential("s", now=0).username != mint_turn_credential("s", now=0).username


def test_candidate_passwords_current_and_previous() -> None:
    cred = mint_turn_credential("old", ttl=600, now=1000)
    pws = candidate_passwords(cred.username, ["new", "old"], now=1100)
    assert cred.password in pws and len(pws) == 2


def test_candidate_passwords_expired() -> None:
    cred = mint_turn_credential("s", ttl=600, now=1000)
    assert candidate_passwords(cred.username, ["s"], now=1601) == []


def test_candidate_passwords_malformed_username() -> None:
    assert candidate_passwords("alice", ["s"], now=0) == []
    assert candidate_passwords("9" * 200, ["s"], now=0) == []


def test_username_expiry_parses() -> None:
    assert username_expiry("1700000000:x") == 1700000000
    assert username_expiry("abc:x") is None


def test_secret_source_rereads_a_rotated_file(tmp_path: Path) -> None:
    import os

    from services.common.credentials import SecretSource

    path = tmp_path / "current"
    path.write_text("first\n")
    src = SecretSource(value="fallback", path=str(path))
    assert src.get() == "first"
    path.write_text("second\n")
    os.utime(path, (1, 1))  # a new mtime, as a Secret volume update gives
    assert src.get() == "second"
    path.unlink()
    assert src.get() == "fallback"
    assert SecretSource(value="v").get() == "v"
