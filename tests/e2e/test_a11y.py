"""Accessibility (issue 11, item 17): axe-core finds no serious or critical violation on the
landing, pre-join, in-call, /privacy and /stats pages, at desktop and phone sizes.

One stack, one call of two per viewport; screenshots of each page go to the `shots` folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright", reason="the playwright pip package is not installed")

from playwright.sync_api import Page, expect

from tests.e2e import pages as ui
from tests.e2e.axe import serious_violations
from tests.e2e.shots import DESKTOP, PHONE, shoot

pytestmark = pytest.mark.e2e


def _context_page(browser: Any, size: dict[str, int]) -> Page:
    # bypass_csp: axe is injected as an inline script, which the app's CSP rightly refuses.
    ctx = browser.new_context(permissions=["camera", "microphone"], viewport=size,
                              bypass_csp=True)
    return ctx.new_page()  # type: ignore[no-any-return]


def _check(page: Page, axe_file: Path, name: str, found: dict[str, Any]) -> None:
    shoot(page, f"a11y-{name}")
    bad = serious_violations(page, axe_file)
    if bad:
        found[f"{name} ({page.viewport_size})"] = bad


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a11y_no_serious_violations(stack: Any, browser: Any, axe_file: Path, shots: Path,
                                    size: dict[str, int]) -> None:
    found: dict[str, Any] = {}
    me, other = _context_page(browser, size), _context_page(browser, DESKTOP)
    try:
        me.goto(f"{stack.url}/")
        expect(ui.button(me, "Start a call")).to_be_visible()
        _check(me, axe_file, "landing", found)
        room_url = ui.start_call(me, stack.url)
        ui.open_room(me, room_url)
        _check(me, axe_file, "prejoin", found)
        me_id = ui.join(me)
        expect(me.get_by_role("region", name="Waiting for others")).to_be_visible()
        _check(me, axe_file, "call-alone", found)
        other_id = ui.join(other, room_url)
        ui.wait_for_video_from(me, other_id)
        ui.wait_for_video_from(other, me_id)
        _check(me, axe_file, "call", found)
        ui.button(me, "Chat").click()
        _check(me, axe_file, "call-chat", found)
        me.keyboard.press("Escape")
        me.goto(f"{stack.url}/privacy")
        expect(me.locator("#fields")).to_be_visible()
        _check(me, axe_file, "privacy", found)
        me.goto(f"{stack.url}/stats")
        expect(me.locator("#stats-status")).not_to_have_text("Loading…")
        _check(me, axe_file, "stats", found)
        me.goto(f"{stack.url}/hello%20world!")
        _check(me, axe_file, "error", found)
    finally:
        me.context.close()
        other.context.close()
    assert found == {}, json.dumps(found, indent=1)
