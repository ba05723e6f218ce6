"""The chaos table (bench/chaos/table.py): cells, rows, and its place between the markers."""

from __future__ import annotations

import pytest

from bench.chaos.table import END, START, Outcome, render, splice


def test_outcome_cell_recovered_not_recovered_failed_skipped() -> None:
    assert Outcome(3.24, 60).cell() == "3.2 s"
    assert Outcome(None, 60).cell() == "not recovered within 60 s"
    assert Outcome(1.0, 60, failed_checks=["a stranger joined"]).cell() == (
        "1.0 s; FAILED: a stranger joined")
    assert Outcome(None, 60, skipped="no relay").cell() == "not run (no relay)"
    assert Outcome(1.0, 60).ok and not Outcome(None, 60).ok


def test_render_one_row_per_fault_modes_in_order_saw_merged() -> None:
    table = render([("3. NATS", {"relay-forced": Outcome(2.0, 60, ["video froze"]),
                                 "direct": Outcome(1.0, 60, ["video froze", "chat lost"])}),
                    ("4. Redis", {"relay-forced": Outcome(0.5, 60, ["nothing new"]),
                                  "direct": Outcome(0.4, 60, ["nothing new"])}),
                    ("5. rooms", {"direct": Outcome(0.0, 60)})])
    lines = table.splitlines()
    assert lines[0] == "| fault | direct | relay-forced | what the user saw |"
    assert lines[2] == ("| 3. NATS | 1.0 s | 2.0 s | "
                        "direct: video froze; chat lost<br>relay-forced: video froze |")
    assert lines[3] == "| 4. Redis | 0.4 s | 0.5 s | nothing new |"
    assert lines[4] == "| 5. rooms | 0.0 s | not run | nothing |"


def test_splice_replaces_between_markers_only() -> None:
    doc = f"intro\n{START}\nold\n{END}\noutro\n"
    assert splice(doc, "new") == f"intro\n{START}\nnew\n{END}\noutro\n"
    with pytest.raises(ValueError):
        splice("no markers", "new")
