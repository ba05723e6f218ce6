"""The ingest core (sans-I/O): request body and headers in, a record to publish out.

`parse_beacon` validates the body against `Beacon` (JSON sent as `application/json`, or the
`text/plain` that `navigator.sendBeacon` sends for a string). `to_record` derives the coarse
client categories from the headers, keeps the day only, and returns the record's JSON and
the nonce that becomes `Nats-Msg-Id`. Headers are read here and go no further.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from pydantic import ValidationError

from services.metrics.errors import BadBeacon, UnsupportedMedia
from services.metrics.periods import day_of
from services.metrics.schema import Beacon, BeaconRecord
from services.metrics.useragent import derive_client

MAX_BEACON_BYTES: Final[int] = 4096
ACCEPTED_TYPES: Final[frozenset[str]] = frozenset({"application/json", "text/plain"})


def parse_beacon(body: bytes, content_type: str | None) -> Beacon:
    """Validate a beacon body.

    Args:
        body: the raw request body (the HTTP layer has already refused > 4 KiB).
        content_type: the Content-Type header; `application/json` or `text/plain`
            (parameters such as `charset=UTF-8` are ignored); absent is taken as JSON.

    Returns:
        The validated `Beacon`.

    Raises:
        UnsupportedMedia: another content type.
        BadBeacon: not JSON, a field not in the schema, or a value out of its list; the
            message names the fields, never echoes their values.
    """
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    if media not in ACCEPTED_TYPES:
        raise UnsupportedMedia("send application/json or text/plain")
    try:
        return Beacon.model_validate_json(body)
    except ValidationError as exc:
        problems = sorted({".".join(str(p) for p in e["loc"]) or e["type"]
                           for e in exc.errors(include_input=False)})
        raise BadBeacon("invalid beacon: " + ", ".join(problems)[:300]) from None


def to_record(beacon: Beacon, headers: Mapping[str, str], *, now: float) -> tuple[bytes, str]:
    """The record to publish for `beacon` and the id JetStream de-duplicates it by.

    Args:
        beacon: a validated beacon.
        headers: request headers with lower-case names (only `user-agent` and the
            `sec-ch-ua*` client hints are read).
        now: Unix time of arrival; only its UTC day is kept.

    Returns:
        (record JSON, message id = the session nonce).
    """
    client = derive_client(
        headers.get("user-agent"),
        sec_ch_ua=headers.get("sec-ch-ua"),
        sec_ch_ua_mobile=headers.get("sec-ch-ua-mobile"),
        sec_ch_ua_platform=headers.get("sec-ch-ua-platform"),
    )
    record = BeaconRecord.from_beacon(beacon, client=client, day=day_of(now))
    return record.model_dump_json().encode(), beacon.nonce
