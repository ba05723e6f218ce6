"""Logpurge: the only thing that deletes from the diagnostic log (retention, erasure, audit)."""

__all__: list[str] = []
