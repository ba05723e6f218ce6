"""Parley's TURN relay: sans-I/O STUN/TURN core, asyncio shell, fleet membership, probe."""

from __future__ import annotations

__all__: list[str] = []
