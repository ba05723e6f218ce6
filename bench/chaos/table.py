"""The fault table (sans-I/O): results in, Markdown out, and its place in docs/resilience.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

START: Final[str] = "<!-- chaos-table -->"
END: Final[str] = "<!-- /chaos-table -->"
HEADER: Final[str] = ("| fault | direct | relay-forced | what the user saw |\n"
                      "|---|---|---|---|")


@dataclass
class Outcome:
    """One fault in one mode: seconds until media and signalling worked again, or None."""

    recovered_s: float | None
    bound_s: float
    saw: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return self.skipped is None and self.recovered_s is not None and not self.failed_checks

    def cell(self) -> str:
        """The table cell: "3.2 s", "not recovered within 60 s", or why it did not run."""
        if self.skipped is not None:
            return f"not run ({self.skipped})"
        text = (f"{self.recovered_s:.1f} s" if self.recovered_s is not None
                else f"not recovered within {self.bound_s:.0f} s")
        if self.failed_checks:
            text += "; FAILED: " + ", ".join(self.failed_checks)
        return text


def render(rows: list[tuple[str, dict[str, Outcome]]]) -> str:
    """The Markdown table: one row per fault, a column per mode ("direct", "relay-forced")."""
    lines = [HEADER]
    for fault, by_mode in rows:
        cells = [by_mode[m].cell() if m in by_mode else "not run"
                 for m in ("direct", "relay-forced")]
        lines.append(f"| {fault} | {cells[0]} | {cells[1]} | {_saw(by_mode)} |")
    return "\n".join(lines)


def _saw(by_mode: dict[str, Outcome]) -> str:
    """What the user saw: once if the modes agree, else per mode."""
    told = {m: "; ".join(o.saw) or "nothing" for m, o in by_mode.items() if o.skipped is None}
    if len(set(told.values())) <= 1:
        return next(iter(told.values()), "nothing")
    return "<br>".join(f"{m}: {t}" for m, t in sorted(told.items()))


def splice(doc: str, table: str) -> str:
    """`doc` with the text between the markers replaced by `table`.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    start, end = doc.find(START), doc.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{START} ... {END} not found in order")
    return doc[:start + len(START)] + "\n" + table + "\n" + doc[end:]
