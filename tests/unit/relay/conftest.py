"""Fixtures of the relay's unit tests (helpers live in `relay_unit_support`)."""

from __future__ import annotations

from relay_unit_support import server, sim

__all__ = ["server", "sim"]
