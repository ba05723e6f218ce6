"""`/.well-known/security.txt` from PARLEY_SECURITY_CONTACT; nothing without it; the /privacy
page links to it (issue 15, item 12)."""

from __future__ import annotations

import datetime as dt
import re

import httpx

from tests.procs import start_service


def test_security_txt_served_with_contact(parley_env: dict[str, str]) -> None:
    sp = start_service("rooms", [], {**parley_env,
                                     "PARLEY_SECURITY_CONTACT": "security@example.org"})
    try:
        r = httpx.get(sp.url + "/.well-known/security.txt")
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        lines = r.text.splitlines()
        assert lines[0] == "Contact: mailto:security@example.org"
        match = re.fullmatch(r"Expires: (\d{4}-\d\d-\d\dT00:00:00Z)", lines[1])
        assert match is not None
        expires = dt.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        days = (expires - dt.datetime.now(dt.UTC)).days
        assert 150 <= days < 366  # RFC 9116 §2.5.5: in the future, less than a year ahead
        assert lines[2:] == ["Preferred-Languages: en"]
        assert httpx.get(sp.url + "/config.json").json()["security_txt"] is True
    finally:
        sp.stop()


def test_security_txt_404_without_contact(parley_env: dict[str, str]) -> None:
    sp = start_service("rooms", [], dict(parley_env))
    try:
        r = httpx.get(sp.url + "/.well-known/security.txt")
        assert r.status_code == 404
        assert "Contact" not in r.text
        assert httpx.get(sp.url + "/config.json").json()["security_txt"] is False
        privacy = httpx.get(sp.url + "/privacy").text
        assert 'href="/.well-known/security.txt"' in privacy
    finally:
        sp.stop()
