"""Browser, OS and device classification from User-Agent and client hints."""

from __future__ import annotations

import pytest

from services.metrics.useragent import derive_client

UAS = {
    "chrome-win": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
                  "Gecko) Chrome/126.0.0.0 Safari/537.36",
    "iphone": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
              "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "android": "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
               "Chrome/126.0.0.0 Mobile Safari/537.36",
    "firefox-mac": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:128.0) Gecko/20100101 "
                   "Firefox/128.0",
    "headless": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "HeadlessChrome/131.0.0.0 Safari/537.36",
}


@pytest.mark.parametrize(("ua", "expected"), [
    ("chrome-win", ("Chrome", 126, "Windows", "desktop")),
    ("iphone", ("Safari", 17, "iOS", "mobile")),
    ("android", ("Chrome", 126, "Android", "mobile")),
    ("firefox-mac", ("Firefox", 128, "macOS", "desktop")),
    ("headless", ("Chrome", 131, "Linux", "desktop")),
])
def test_derive_client_user_agent(ua: str, expected: tuple[str, int, str, str]) -> None:
    c = derive_client(UAS[ua])
    assert (c.browser, c.browser_major, c.os, c.device) == expected


def test_derive_client_hints_take_precedence() -> None:
    c = derive_client(
        UAS["chrome-win"],
        sec_ch_ua='"Chromium";v="127", "Microsoft Edge";v="127", "Not)A;Brand";v="99"',
        sec_ch_ua_mobile="?0", sec_ch_ua_platform='"Chrome OS"',
    )
    assert (c.browser, c.browser_major, c.os, c.device) == ("Edge", 127, "ChromeOS", "desktop")


def test_derive_client_unknown_is_other() -> None:
    c = derive_client("curl/8.5.0")
    assert (c.browser, c.browser_major, c.os, c.device) == ("Other", 0, "Other", "other")
    assert derive_client(None).browser == "Other"


def test_derive_client_huge_version_capped() -> None:
    c = derive_client(UAS["chrome-win"].replace("126.0.0.0", "99999.0"))
    assert c.browser_major == 999
