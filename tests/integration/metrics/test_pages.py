"""/privacy and /stats in a real Chromium, and GPC / DNT / opt-out sending nothing.

The pages are served by `parley rooms` (its /config.json names the metrics service) and
read from a real `parley metrics` process. The beacon-sending test needs the web client's
beacon code (another change) and is skipped until web/ has it.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.common.infra import NatsServer, RedisServer, free_port
from services.metrics.schema import beacon_json_schema
from tests.e2e.conftest import start_stack
from tests.integration.metrics.conftest import metrics_env
from tests.integration.metrics.helpers import beacon, wait_sessions_sync
from tests.procs import ServiceProcess, start_service

pytestmark = pytest.mark.e2e
WEB = Path(__file__).resolve().parents[3] / "web"
IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
OPERA_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0")


@pytest.fixture(scope="module")
def site(parley_env: dict[str, str], nats_server: NatsServer,
         redis_server: RedisServer) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """(rooms, metrics): rooms serves the pages and points them at metrics."""
    rooms_port = free_port()
    origin = f"http://127.0.0.1:{rooms_port}"
    metrics = start_service("metrics", [], metrics_env(
        nats_server.url, redis_server.url, PARLEY_METRICS_ALLOWED_ORIGINS=origin))
    try:
        rooms = start_service("rooms", [], {**parley_env, "PARLEY_METRICS_URL": metrics.url},
                              port=rooms_port)
        try:
            yield rooms, metrics
        finally:
            rooms.stop()
    finally:
        metrics.stop()


def _post(url: str, body: dict[str, Any], user_agent: str, source: str) -> int:
    req = urllib.request.Request(f"{url}/beacon", data=json.dumps(body).encode(), headers={
        "Content-Type": "text/plain", "User-Agent": user_agent, "X-Forwarded-For": source})
    with urllib.request.urlopen(req, timeout=10) as r:
        return int(r.status)


def test_privacy_page_lists_every_schema_field(
    site: tuple[ServiceProcess, ServiceProcess], new_page: Callable[[], Any]
) -> None:
    rooms, _ = site
    page = new_page()
    page.goto(f"{rooms.url}/privacy")
    page.wait_for_selector("#fields:not([hidden]) tbody tr", timeout=15_000)
    shown = set(page.locator("#fields tbody th code").all_inner_texts())
    schema = beacon_json_schema()
    assert shown == set(schema["properties"])
    derived = set(page.locator("#derived tbody th code").all_inner_texts())
    assert derived == set(schema["x-parley-derived"]["properties"])
    text = page.locator("#fields").inner_text()
    assert "session-end, connect-failure" in text
    assert "signalling, ice, dtls, media" in text
    assert "IP address" in page.locator("#never-stored").inner_text()


def test_stats_page_draws_only_k_anonymous_groups(
    site: tuple[ServiceProcess, ServiceProcess], new_page: Callable[[], Any],
    redis_server: RedisServer,
) -> None:
    rooms, metrics = site
    for i in range(10):
        assert _post(metrics.url, beacon(screen_share=True), IPHONE_UA, f"192.0.2.{i}") == 204
    for i in range(3):
        assert _post(metrics.url, beacon(), OPERA_UA, f"192.0.2.{50 + i}") == 204
    assert wait_sessions_sync(redis_server.url, "Safari", 17, 10) >= 10
    assert wait_sessions_sync(redis_server.url, "Opera", 111, 3) >= 3
    page = new_page()
    page.goto(f"{rooms.url}/stats")
    page.wait_for_selector("svg.chart", timeout=15_000)
    charts = " ".join(page.locator("svg.chart").all_text_contents())
    assert "Safari" in charts
    assert "Opera" not in charts
    assert re.search(r"withheld", page.locator("#charts").inner_text())


def _web_sends_beacons() -> bool:
    mine = {"privacy.js", "stats.js"}
    return any("sendBeacon" in p.read_text(errors="replace")
               for p in WEB.rglob("*.js") if p.name not in mine)


@pytest.mark.skipif(not _web_sends_beacons(),
                    reason="the web client does not send beacons yet (no sendBeacon in web/)")
@pytest.mark.parametrize("signal", ["none", "gpc", "dnt", "opt-out"])
def test_beacons_not_sent_under_gpc_dnt_or_opt_out(signal: str, browser: Any) -> None:
    """A call of two pages ends; a beacon goes out only when no signal says not to.

    Opt-out is exercised both ways: page A unticks "Send anonymous usage statistics" in
    the pre-join, page B carries the stored setting from an earlier visit. The witness is
    the metrics service's own counter, not the browser's request log: Playwright does not
    report the keepalive request a closing page makes, so an empty log would prove nothing.
    """
    from playwright.sync_api import expect

    from tests.e2e import beacons
    from tests.e2e import pages as ui

    stack = start_stack()
    try:
        metrics_url = beacons.metrics_url(stack)
        contexts = []
        pages = []
        for i in range(2):
            headers = {"Sec-GPC": "1"} if signal == "gpc" else (
                {"DNT": "1"} if signal == "dnt" else {})
            ctx = browser.new_context(permissions=["camera", "microphone"],
                                      extra_http_headers=headers)
            if signal == "gpc":
                ctx.add_init_script(
                    "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl',"
                    " {get: () => true});")
            if signal == "dnt":
                ctx.add_init_script(
                    "Object.defineProperty(Navigator.prototype, 'doNotTrack',"
                    " {get: () => '1'});")
            if signal == "opt-out" and i == 1:
                ctx.add_init_script(
                    "localStorage.setItem('parley.sendUsageStats', 'false');")
            contexts.append(ctx)
            pages.append(ctx.new_page())
        a, b = pages
        room_url = ui.start_call(a, stack.url)
        ui.open_room(b, room_url)
        stats_a = a.get_by_label("Send anonymous usage statistics")
        stats_b = b.get_by_label("Send anonymous usage statistics")
        if signal == "opt-out":
            expect(stats_b).not_to_be_checked()  # the stored choice, shown
            stats_a.uncheck()
            assert a.evaluate("localStorage.getItem('parley.sendUsageStats')") == "false"
        elif signal == "none":
            expect(stats_a).to_be_checked()
            expect(stats_b).to_be_checked()
        a_id = ui.join(a)
        b_id = ui.join(b)
        ui.wait_for_video_from(a, b_id)
        ui.wait_for_video_from(b, a_id)
        for p in pages:
            p.close(run_before_unload=True)
        if signal == "none":
            # Received (JetStream acknowledged it) and counted (folded into the day's
            # aggregates): exactly one per page.
            assert beacons.wait_counter(metrics_url, beacons.ACCEPTED, 2) == 2
            assert beacons.wait_counter(metrics_url, beacons.FOLDED, 2) == 2
        time.sleep(2)
        for ctx in contexts:
            ctx.close()
        # Nothing more came later (one beacon per session, all valid), and under a signal
        # nothing reached the service at all, not even a beacon it would have refused.
        assert beacons.received(metrics_url) == (2 if signal == "none" else 0)
    finally:
        stack.stop()
