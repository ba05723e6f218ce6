"""Signalling fan-out benchmark (`python -m bench.signaling`; see README.md)."""
