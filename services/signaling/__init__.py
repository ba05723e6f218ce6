"""Signalling: one websocket per participant, rooms fanned out across replicas over NATS.

The protocol is in `docs/signaling.md` and `protocol.py`; `session.py`, `routing.py`,
`ratelimit.py`, `resume.py` and `presence.py` are its sans-I/O core; `node.py` is the
transport, `app.py` the uvicorn factory.
"""

from __future__ import annotations

__all__ = ["SignalingSettings", "create_app"]

from services.signaling.app import create_app
from services.signaling.settings import SignalingSettings
