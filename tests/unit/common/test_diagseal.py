"""Sealing diagnostic records to a day's public key (X25519 + HKDF + AES-GCM)."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from services.common.diaglog import seal, unseal


def _pair() -> tuple[bytes, bytes]:
    private = X25519PrivateKey.generate()
    return private.private_bytes_raw(), private.public_key().public_bytes_raw()


def test_seal_round_trip_needs_only_the_public_key_to_write() -> None:
    private, public = _pair()
    nonce, sealed = seal(public, b'{"ip": "203.0.113.1"}', "20261129")
    assert b"203.0.113.1" not in sealed
    assert unseal(private, nonce, sealed, "20261129") == b'{"ip": "203.0.113.1"}'


def test_unseal_other_days_key_fails() -> None:
    _, public = _pair()
    other, _ = _pair()
    nonce, sealed = seal(public, b"x", "20261129")
    with pytest.raises(InvalidTag):
        unseal(other, nonce, sealed, "20261129")


def test_unseal_bound_to_the_day() -> None:
    private, public = _pair()
    nonce, sealed = seal(public, b"x", "20261129")
    with pytest.raises(InvalidTag):
        unseal(private, nonce, sealed, "20261130")
