"""Fixtures of the relay's integration tests (helpers live in `relay_it_support`)."""

from __future__ import annotations

from relay_it_support import echo_peer, relay, relay_factory

__all__ = ["echo_peer", "relay", "relay_factory"]
