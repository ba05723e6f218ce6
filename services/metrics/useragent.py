"""Browser family + major version, OS family and device class from request headers.

Pure functions over header values: UA client hints (`Sec-CH-UA`, `Sec-CH-UA-Mobile`,
`Sec-CH-UA-Platform`, the low-entropy ones every Chromium sends unasked) take precedence,
the User-Agent string parsed with `ua-parser` 1.x fills the rest. Only values from the fixed
lists in `schema.py` come out; the header strings are never returned nor kept.
"""

from __future__ import annotations

import re
from typing import Final

import ua_parser

from services.metrics.schema import BrowserFamily, ClientInfo, DeviceClass, OsFamily

MAX_UA_CHARS: Final[int] = 512
MAX_MAJOR: Final[int] = 999

_UA_FAMILIES: Final[dict[str, BrowserFamily]] = {
    "Chrome": "Chrome", "Chrome Mobile": "Chrome", "Chromium": "Chrome",
    "HeadlessChrome": "Chrome", "Chrome Mobile WebView": "Chrome",
    "Chrome Mobile iOS": "Chrome iOS",
    "Edge": "Edge", "Edge Mobile": "Edge",
    "Firefox": "Firefox", "Firefox Mobile": "Firefox", "Firefox iOS": "Firefox iOS",
    "Safari": "Safari", "Mobile Safari": "Safari", "Mobile Safari UI/WKWebView": "Safari",
    "Opera": "Opera", "Opera Mobile": "Opera",
    "Samsung Internet": "Samsung Internet",
}
# Sec-CH-UA brands, most specific first ("Chromium" is in every Chromium-based list).
_BRANDS: Final[tuple[tuple[str, BrowserFamily], ...]] = (
    ("Microsoft Edge", "Edge"), ("Opera", "Opera"), ("Samsung Internet", "Samsung Internet"),
    ("Google Chrome", "Chrome"), ("HeadlessChrome", "Chrome"),
)
_OS_FAMILIES: Final[dict[str, OsFamily]] = {
    "Windows": "Windows", "Mac OS X": "macOS", "macOS": "macOS", "Linux": "Linux",
    "Ubuntu": "Linux", "Fedora": "Linux", "Debian": "Linux", "Chrome OS": "ChromeOS",
    "Chromium OS": "ChromeOS", "Android": "Android", "iOS": "iOS",
}
_DESKTOP_OS: Final[frozenset[str]] = frozenset({"Windows", "macOS", "Linux", "ChromeOS"})
_BRAND_ITEM: Final[re.Pattern[str]] = re.compile(r'"([^"]{1,64})"\s*;\s*v="(\d{1,6})')


def _major(text: str | None) -> int:
    if not text or not text.isdigit():
        return 0
    return min(int(text), MAX_MAJOR)


def _from_hints(sec_ch_ua: str | None) -> tuple[BrowserFamily, int] | None:
    if not sec_ch_ua:
        return None
    brands = dict(_BRAND_ITEM.findall(sec_ch_ua[:MAX_UA_CHARS]))
    for brand, family in _BRANDS:
        if brand in brands:
            return family, _major(brands[brand])
    return None


def _platform(sec_ch_ua_platform: str | None) -> OsFamily | None:
    if not sec_ch_ua_platform:
        return None
    return _OS_FAMILIES.get(sec_ch_ua_platform.strip().strip('"')[:32])


def derive_client(
    user_agent: str | None,
    *,
    sec_ch_ua: str | None = None,
    sec_ch_ua_mobile: str | None = None,
    sec_ch_ua_platform: str | None = None,
) -> ClientInfo:
    """Classify the client from its headers into the coarse, fixed categories.

    Args:
        user_agent: the User-Agent header (may be absent).
        sec_ch_ua: the `Sec-CH-UA` brand list, if sent.
        sec_ch_ua_mobile: `?1` or `?0`, if sent.
        sec_ch_ua_platform: the quoted platform name, if sent.

    Returns:
        A `ClientInfo`; unknown browsers are `Other` with major 0, unknown OSes `Other`.
    """
    ua = (user_agent or "")[:MAX_UA_CHARS]
    parsed = ua_parser.parse(ua) if ua else None
    browser: BrowserFamily = "Other"
    major = 0
    hinted = _from_hints(sec_ch_ua)
    if hinted is not None:
        browser, major = hinted
    elif parsed is not None and parsed.user_agent is not None:
        browser = _UA_FAMILIES.get(parsed.user_agent.family, "Other")
        major = _major(parsed.user_agent.major) if browser != "Other" else 0
    os_family = _platform(sec_ch_ua_platform)
    if os_family is None:
        os_family = "Other"
        if parsed is not None and parsed.os is not None:
            os_family = _OS_FAMILIES.get(parsed.os.family, "Other")
    device = _device(os_family, ua, parsed, sec_ch_ua_mobile)
    return ClientInfo(browser=browser, browser_major=major, os=os_family, device=device)


def _device(os_family: OsFamily, ua: str, parsed: ua_parser.Result | None,
            mobile_hint: str | None) -> DeviceClass:
    if mobile_hint is not None and mobile_hint.strip() == "?1":
        return "mobile"
    device_family = parsed.device.family if parsed is not None and parsed.device else ""
    if device_family == "Spider":
        return "other"
    if os_family == "iOS":
        return "tablet" if device_family == "iPad" or "iPad" in ua else "mobile"
    if os_family == "Android":
        if mobile_hint is not None and mobile_hint.strip() == "?0":
            return "tablet"
        return "mobile" if "Mobile" in ua else "tablet"
    if os_family in _DESKTOP_OS:
        return "desktop"
    return "other"
