"""What a stack's metrics service received: its URL (from rooms' /config.json) and its
beacon counters (from its Prometheus `/metrics`), for tests of the web client's beacons.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from typing import Any, Final

ACCEPTED: Final[str] = 'parley_metrics_beacons_total{outcome="accepted"}'
FOLDED: Final[str] = "parley_metrics_folded_total"


def metrics_url(stack: Any) -> str:
    """The metrics service the pages of `stack` send to (`metrics_url` in /config.json).

    Behind the gateway that is a path of the page's own origin; its `/metrics` is then
    read from the service's loopback address (the stack's run.env).
    """
    with urllib.request.urlopen(f"{stack.url}/config.json", timeout=10) as r:
        url = json.load(r)["metrics_url"]
    assert url, "the stack has no metrics service (metrics_url is null)"
    if str(url).startswith("/"):
        return str(stack.internal_url("metrics"))
    return str(url).rstrip("/")


def _metrics(url: str) -> str:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        body: bytes = r.read()
    return body.decode()


def counter(url: str, sample: str) -> int:
    """The value of one sample line of `url`/metrics (0 while it has not appeared)."""
    m = re.search(rf"^{re.escape(sample)} ([0-9.e+]+)$", _metrics(url), re.MULTILINE)
    return int(float(m.group(1))) if m else 0


def received(url: str) -> int:
    """Every beacon that reached the service, whatever became of it (accepted, duplicate,
    refused as invalid or too large, rate-limited): a refused beacon was still sent."""
    lines = re.findall(r"^parley_metrics_beacons_total\{[^}]*\} ([0-9.e+]+)$", _metrics(url),
                       re.MULTILINE)
    return sum(int(float(v)) for v in lines)


def wait_counter(url: str, sample: str, expected: int, within: float = 15) -> int:
    """Wait until `sample` reaches `expected`; return its value then (or at the deadline)."""
    deadline = time.monotonic() + within
    while (n := counter(url, sample)) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return n
