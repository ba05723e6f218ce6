"""`/.well-known/security.txt` (RFC 9116) from the operator's `PARLEY_SECURITY_CONTACT`.

With no contact configured the route answers 404: a placeholder address would send reports
nowhere. `Expires` (required, RFC 9116 §2.5.5) is kept 180 days ahead, at midnight UTC, so
the file stays valid for as long as the operator keeps the contact configured.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Final

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

PATH: Final[str] = "/.well-known/security.txt"
EXPIRES_AFTER: Final[dt.timedelta] = dt.timedelta(days=180)


def security_txt(contact: str, *, now: float, public_url: str = "") -> str:
    """The file's text (RFC 9116 §2.5: Contact and Expires required; one field a line).

    Args:
        contact: a mailto:, https: or tel: URI (validated by the settings).
        now: Unix time, for Expires.
        public_url: the instance's public origin (`PARLEY_PUBLIC_URL`); when known, the
            file names its own address (Canonical, §2.5.2).
    """
    day = dt.datetime.fromtimestamp(now, dt.UTC).replace(hour=0, minute=0, second=0,
                                                         microsecond=0)
    expires = (day + EXPIRES_AFTER).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"Contact: {contact}\n"
        f"Expires: {expires}\n"
        "Preferred-Languages: en\n"
        + (f"Canonical: {public_url.rstrip('/')}{PATH}\n" if public_url else "")
    )


def security_txt_router(contact: str, public_url: str = "") -> APIRouter:
    """`GET /.well-known/security.txt`: the file, or 404 when `contact` is empty."""
    router = APIRouter()

    @router.get(PATH, include_in_schema=False)
    async def well_known_security_txt() -> Response:
        if not contact:
            return PlainTextResponse("not found\n", status_code=404)
        return PlainTextResponse(security_txt(contact, now=time.time(), public_url=public_url),
                                 headers={"Cache-Control": "max-age=86400"})

    return router
