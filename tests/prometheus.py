"""Debian's `prometheus` and `promtool` for the monitoring tests: found on PATH, or the test
skips saying why; `PARLEY_PROMETHEUS_REQUIRED=1` (set by .ci/run) makes that a failure."""

from __future__ import annotations

import os

import pytest

from tools.dashboards.prom import find


def prometheus_binary(name: str = "prometheus") -> str:
    """Path of `prometheus` or `promtool`, or skip (fail when required)."""
    found = find(name)
    if found:
        return found
    reason = f"{name} is not on PATH (Debian: apt-get install --no-install-recommends prometheus)"
    if os.environ.get("PARLEY_PROMETHEUS_REQUIRED") == "1":
        pytest.fail(reason + "; PARLEY_PROMETHEUS_REQUIRED=1")
    pytest.skip(reason)
