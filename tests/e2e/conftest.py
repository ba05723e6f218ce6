"""E2E fixtures: the whole stack from `parley dev` (real processes) and headless Chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stack import Stack, start_stack

__all__ = ["Stack", "start_stack"]



@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The whole local stack: rooms, one signalling replica, a relay."""
    s = start_stack()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def stack_two_replicas() -> Iterator[Stack]:
    """The stack with two signalling replicas (rooms hands them out round-robin)."""
    s = start_stack(signaling_replicas=2)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def stack_relay_forced() -> Iterator[Stack]:
    """The stack with relay forced for everyone (iceTransportPolicy "relay")."""
    s = start_stack(force_relay=True)
    yield s
    s.stop()


_SHOTS_USED: list[Path] = []


@pytest.fixture(scope="session")
def shots() -> Path:
    """The screenshot folder (tests/e2e/shots.py); the run's summary says where it is."""
    from tests.e2e.shots import folder

    path = folder()
    _SHOTS_USED.append(path)
    return path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print where this run's screenshots are (to look at, not for pixel diffs)."""
    for path in _SHOTS_USED[:1]:
        terminalreporter.write_line(f"[parley e2e] screenshots: {path}")


@pytest.fixture(scope="session")
def axe_file() -> Path:
    """axe-core's axe.min.js (tests/e2e/axe.py), fetched from the npm registry if missing.

    Skips without npm or registry, except in CI (`CI=true`), where that is a failure.
    """
    from tests.e2e.axe import AxeUnavailable, ensure_axe

    try:
        return ensure_axe()
    except AxeUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"axe-core unavailable: {exc}")
        pytest.skip(f"axe-core unavailable: {exc}")
