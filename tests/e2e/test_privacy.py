"""Privacy, end to end: after a real call, the room name and the users' addresses are
nowhere but in the diagnostic log — not in any process's output, NATS subject or payload,
Redis key or value, /metrics, the /stats aggregates or any report — and the diagnostic log
holds exactly the expected records.
"""

from __future__ import annotations

import asyncio
import json
import concurrent.futures
import re
import secrets
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
import redis as redis_sync

from services.common import subjects
from services.common.bus import NatsBus
from services.common.diaglog import DiagLog
from services.logpurge.store import DiagStore
from tests.e2e.conftest import Stack, start_stack
from tests.e2e.beacons import FOLDED, metrics_url, wait_counter
from tests.e2e.pages import join, wait_for_video_from

pytestmark = pytest.mark.e2e
HASH_KEY = secrets.token_urlsafe(32)
ADDRESSES = ("203.0.113.77", "203.0.113.78")  # documentation range, forwarded by a "proxy"


@pytest.fixture(scope="module")
def private_stack() -> Iterator[Stack]:
    s = start_stack(env={"PARLEY_HASH_KEY": HASH_KEY,
                         "PARLEY_TRUSTED_PROXIES": '["127.0.0.1/32", "::1/128"]'})
    yield s
    s.stop()


def _url(stack: Stack, name: str) -> str:
    """The stack's NATS or Redis URL as its `admin` user (every service has a narrower one)."""
    m = re.search(r"their users of this run: (\S+)", stack.output())
    assert m, "no credentials file in the dev output"
    url = json.loads(Path(m.group(1)).read_text())[name]["admin"]
    assert isinstance(url, str) and url.startswith(f"{name}://admin:")
    return url


class Sniffer:
    """A `>` subscriber on the stack's NATS, in a thread of its own, recording everything."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[tuple[str, bytes]] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        nc = await nats.connect(self.url)

        async def cb(msg: Any) -> None:
            self.seen.append((msg.subject, bytes(msg.data)))

        await nc.subscribe(">", cb=cb)
        await nc.flush()
        self.ready.set()
        await asyncio.to_thread(self.stop.wait)
        await nc.drain()

    def __enter__(self) -> Sniffer:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def _get(url: str, headers: dict[str, str] | None = None) -> str:
    import urllib.request

    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(r.read().decode())


def _redis_dump(url: str) -> list[str]:
    r = redis_sync.Redis.from_url(url, decode_responses=False)
    out: list[str] = []
    for key in r.scan_iter(count=1000):
        out.append(key.decode(errors="replace"))
        kind = r.type(key).decode()
        if kind == "string":
            out.append(repr(r.get(key)))
        elif kind == "hash":
            out.append(repr(r.hgetall(key)))
        elif kind == "zset":
            out.append(repr(r.zrange(key, 0, -1, withscores=True)))
        elif kind == "set":
            out.append(repr(r.smembers(key)))
        elif kind == "list":
            out.append(repr(r.lrange(key, 0, -1)))
        elif kind == "stream":
            out.append(repr(r.xrange(key)))
    return out


async def _diag_records(nats_url: str, room: str) -> list[Any]:
    bus = await NatsBus.connect(nats_url, name="privacy-test")
    try:
        diag = DiagLog(bus.js, hash_key=HASH_KEY)
        store = DiagStore(bus, diag, hash_key=HASH_KEY, retention_days=30)
        await diag.ensure()
        return await store.lookup(room=room)
    finally:
        await bus.close()


@pytest.fixture(scope="module")
def private_sfu_stack() -> Iterator[Stack]:
    """The same, with every room through the SFU (PARLEY_MESH_MAX=0)."""
    s = start_stack(sfus=1, env={"PARLEY_HASH_KEY": HASH_KEY, "PARLEY_MESH_MAX": "0",
                         "PARLEY_TRUSTED_PROXIES": '["127.0.0.1/32", "::1/128"]'})
    yield s
    s.stop()


def test_privacy_whole_stack_call_leaves_no_trace(private_stack: Stack, browser: Any) -> None:
    _call_leaves_no_trace(private_stack, browser, sfu=False)


def test_privacy_sfu_call_leaves_no_trace(private_sfu_stack: Stack, browser: Any) -> None:
    """Through the SFU: its output, /metrics, NATS subjects and payloads carry no room name
    and no address; the offers it gets on the bus have no candidate lines at all."""
    _call_leaves_no_trace(private_sfu_stack, browser, sfu=True)


IPV4 = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")


def _call_leaves_no_trace(private_stack: Stack, browser: Any, *, sfu: bool) -> None:
    import urllib.request

    room = f"secret-{uuid.uuid4().hex[:10]}"
    nats_url, redis_url = _url(private_stack, "nats"), _url(private_stack, "redis")
    with Sniffer(nats_url) as sniffer:
        pages, contexts = [], []
        for address in ADDRESSES:
            ctx = browser.new_context(permissions=["camera", "microphone"],
                                      extra_http_headers={"X-Forwarded-For": address})
            contexts.append(ctx)
            pages.append(ctx.new_page())
        try:
            ids = [join(p, f"{private_stack.url}/{room}") for p in pages]
            wait_for_video_from(pages[0], ids[1])
            wait_for_video_from(pages[1], ids[0])
            if sfu:
                assert pages[0].evaluate("() => Object.keys(window.parley.connections())") \
                    == ["sfu"]
            pages[1].get_by_role("button", name="Leave", exact=True).click()
            pages[0].wait_for_timeout(500)
        finally:
            for ctx in contexts:
                ctx.close()
    with urllib.request.urlopen(f"http://127.0.0.1:{private_stack.port}/metrics") as r:
        metrics_text = r.read().decode()
    if sfu:
        sfu_metrics = _get(f"{private_stack.internal_url('sfu-1')}/metrics")
        assert re.search(r"^parley_sfu_packets_forwarded_total [1-9]", sfu_metrics, re.M)
        assert not IPV4.search(sfu_metrics), "an address in the SFU's /metrics"
        metrics_text += sfu_metrics
        sfu_lines = [line for line in private_stack.lines if " sfu parley." in line]
        assert sfu_lines, "no output from the SFU"
        for line in sfu_lines:
            assert not IPV4.search(line), f"an address in the SFU's output: {line}"
        requests = [p for subj, p in sniffer.seen if subj.startswith("parley.sfu.session.")]
        assert requests, "no offer went to the SFU over NATS"
        for payload in requests:
            assert b"a=candidate" not in payload, "a browser's candidates crossed the bus"
    # the metrics service: its /metrics, the public aggregates behind /stats, every report
    murl = metrics_url(private_stack)
    wait_counter(murl, FOLDED, 1)
    key_match = re.search(r"metrics API key \(made for this run\): (\S+)", private_stack.output())
    assert key_match, "parley dev printed no metrics API key"
    auth = {"Authorization": f"Bearer {key_match.group(1)}"}
    published = [_get(f"{murl}/metrics"), _get(f"{murl}/stats.json"), _get(f"{murl}/stats.json")]
    listing = json.loads(_get(f"{murl}/reports", auth))
    for report in listing["reports"]:
        for fmt in ("json", "csv"):
            published.append(_get(f"{murl}/reports/{report['name']}?format={fmt}", auth))
    metrics_text += "\n".join(published)

    secrets_ = [room, *ADDRESSES]
    outputs = private_stack.output()
    for s in secrets_:
        assert s not in outputs, f"{s} in a process's output"
        assert s not in metrics_text, f"{s} in /metrics, /stats or a report"
    for subject, payload in sniffer.seen:
        in_diag = subject.startswith(f"{subjects.PREFIX}.diag.")
        for s in secrets_:
            assert s not in subject, f"{s} in NATS subject {subject}"
            if not in_diag and not subject.startswith("$JS.API"):
                assert s.encode() not in payload, f"{s} in a payload on {subject}"
    for item in _redis_dump(redis_url):
        for s in secrets_:
            assert s not in item, f"{s} in Redis"
    assert sniffer.seen, "the sniffer saw no traffic at all"

    # playwright's sync API owns this thread's event loop: read the store from another thread
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        records = pool.submit(asyncio.run, _diag_records(nats_url, room)).result(30)
    assert sorted(r.ip for r in records) == sorted(ADDRESSES)
    assert {r.room for r in records} == {room}
    assert {r.service for r in records} == {"rooms"}
