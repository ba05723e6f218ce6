from __future__ import annotations

import re

import pytest

from services.common.roomnames import RoomNameError, normalize, random_name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Hello", "hello"), ("  Team-Sync ", "team-sync"), ("STRASSE", "strasse"),
     ("Straße", "strasse"), ("a", "a"), ("x" * 64, "x" * 64), ("café.talk_1", "café.talk_1")],
)
def test_normalize_accepts(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [("", "must not be empty"), ("   ", "must not be empty"),
     ("x" * 65, "at most 64"), ("a b", "may contain"), ("a/b", "may contain"),
     ("-start", "may contain"), (".hidden", "may contain"), ("api", "reserved"),
     ("Healthz", "reserved"), ("<script>", "may contain")],
)
def test_normalize_rejects(raw: str, message: str) -> None:
    with pytest.raises(RoomNameError, match=message):
        normalize(raw)


def test_random_name_readable_and_valid() -> None:
    names = {random_name() for _ in range(200)}
    assert len(names) == 200
    for name in names:
        assert re.fullmatch(r"[a-z]+-[a-z]+-\d{6}", name)
        assert normalize(name) == name
