"""The day cube: each beacon is one session in exactly one cell of its day.

A cell is the tuple of every coarse dimension of a `BeaconRecord` (never the nonce, which
the record does not carry), encoded as one `|`-separated string so that a day's aggregate is
one Redis hash `cell -> sessions`. Reports sum cells over fixed groupings (`reports.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from services.metrics.schema import BeaconRecord

DIMENSIONS: Final[tuple[str, ...]] = (
    "browser", "browser_major", "os", "device", "event", "failure_stage",
    "local_candidate", "remote_candidate", "protocol", "relay_protocol", "screen_share",
    "mute_toggles", "camera_off", "always_relay", "duration", "peers", "ice_restarts",
)
NONE: Final[str] = "-"
SEP: Final[str] = "|"

Cell = tuple[str, ...]


def _text(value: object) -> str:
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def cell_of(record: BeaconRecord) -> str:
    """The encoded cell a record counts in (its day is the hash it goes to)."""
    c = record.client
    values: list[object] = [
        c.browser, c.browser_major, c.os, c.device, record.event, record.failure_stage,
        record.local_candidate, record.remote_candidate, record.protocol,
        record.relay_protocol, record.screen_share, record.mute_toggles, record.camera_off,
        record.always_relay, record.duration, record.peers, record.ice_restarts,
    ]
    text = [_text(v) for v in values]
    if any(SEP in t for t in text):  # impossible with the schema's literals; be sure
        raise ValueError("a dimension value contains the separator")
    return SEP.join(text)


def decode(cell: str) -> dict[str, str]:
    """The dimensions of an encoded cell, by name (`-` stands for none)."""
    parts = cell.split(SEP)
    if len(parts) != len(DIMENSIONS):
        raise ValueError(f"cell has {len(parts)} dimensions, expected {len(DIMENSIONS)}")
    return dict(zip(DIMENSIONS, parts, strict=True))


def merge(days: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Sum several days' cells into one mapping `cell -> sessions`."""
    total: dict[str, int] = {}
    for day in days:
        for cell, n in day.items():
            total[cell] = total.get(cell, 0) + int(n)
    return total
