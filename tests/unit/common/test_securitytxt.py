"""security.txt (RFC 9116): the required fields, an Expires in the future (issue 15, item 12)."""

from __future__ import annotations

import datetime as dt

from services.common.securitytxt import security_txt

NOW = dt.datetime(2026, 11, 29, 8, 30, tzinfo=dt.UTC).timestamp()


def test_security_txt_fields() -> None:
    assert security_txt("mailto:security@example.org", now=NOW) == (
        "Contact: mailto:security@example.org\n"
        "Expires: 2027-05-28T00:00:00Z\n"
        "Preferred-Languages: en\n"
    )


def test_security_txt_canonical_when_public_url_known() -> None:
    text = security_txt("https://example.org/report", now=NOW,
                        public_url="https://chat.example.org")
    assert text.splitlines()[-1] == (
        "Canonical: https://chat.example.org/.well-known/security.txt")
