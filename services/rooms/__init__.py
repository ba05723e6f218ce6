"""Rooms: room allocation, join tokens, ICE servers (TURN relay choice), and the web client."""

__all__: list[str] = []
