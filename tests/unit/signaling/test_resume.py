"""Unit tests of resume keys, deadlines and presence semantics (in memory)."""

from __future__ import annotations

import pytest

from services.signaling.presence import MemoryPresence
from services.signaling.resume import (
    Deadlines,
    ResumeOutcome,
    decide_resume,
    hash_resume_key,
    keys_match,
    new_resume_key,
)
from tests.unit.signaling.presence_cases import CASES, DEADLINES, Case


def test_new_resume_key_is_random_and_url_safe() -> None:
    a, b = new_resume_key(), new_resume_key()
    assert a != b
    assert len(a) >= 32
    assert all(c.isalnum() or c in "-_" for c in a)


def test_keys_match_only_the_right_key() -> None:
    stored = hash_resume_key("k1")
    assert keys_match(stored, "k1")
    assert not keys_match(stored, "k2")
    assert "k1" not in stored


def test_deadlines_live_outlasts_a_heartbeat_gap() -> None:
    d = Deadlines(grace=20.0, heartbeat=5.0)
    assert d.live(100.0) == 125.0
    assert d.dropped(100.0) == 120.0
    assert d.key_ttl() >= 75


def test_decide_resume_live_right_key() -> None:
    assert decide_resume(stored_hash=hash_resume_key("k"), deadline=10.0, presented_key="k",
                         now=10.0) is ResumeOutcome.RESUMED


def test_decide_resume_past_deadline() -> None:
    assert decide_resume(stored_hash=hash_resume_key("k"), deadline=9.9, presented_key="k",
                         now=10.0) is ResumeOutcome.GONE


def test_decide_resume_no_presence() -> None:
    assert decide_resume(stored_hash=None, deadline=None, presented_key="k",
                         now=0.0) is ResumeOutcome.GONE


def test_decide_resume_wrong_key() -> None:
    assert decide_resume(stored_hash=hash_resume_key("k"), deadline=10.0, presented_key="x",
                         now=0.0) is ResumeOutcome.BAD_KEY


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
async def test_memory_presence_case(case: Case) -> None:
    await case(MemoryPresence(DEADLINES), "room-key-1")
