"""The reports: fixed groupings of a period's cube, k-anonymous, optionally noised.

Every report is one fixed grouping (documented in `REPORTS`); callers choose a report and a
period, nothing else. Each row is a group of sessions; a row with fewer than `k` sessions
is dropped and only counted in `suppressed` (its number of rows, and its number of sessions
only when that total is itself at least `k`). Pure: the cube comes in, a `Report` comes out.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from services.metrics.cube import NONE, decode
from services.metrics.errors import UnknownReport
from services.metrics.noise import CountNoise
from services.metrics.wilson import wilson_interval

Value = str | int | float | bool | None
Key = tuple[str, ...]
MEASURES: Final[tuple[str, ...]] = (
    "sessions", "failures", "screen_share", "mute_used", "camera_off", "always_relay",
)


@dataclass(slots=True)
class Measures:
    """Counts of one group of sessions."""

    sessions: int = 0
    failures: int = 0
    screen_share: int = 0
    mute_used: int = 0
    camera_off: int = 0
    always_relay: int = 0

    def add(self, dims: Mapping[str, str], n: int) -> None:
        self.sessions += n
        self.failures += n if dims["event"] == "connect-failure" else 0
        self.screen_share += n if dims["screen_share"] == "1" else 0
        self.mute_used += n if dims["mute_toggles"] != "0" else 0
        self.camera_off += n if dims["camera_off"] == "1" else 0
        self.always_relay += n if dims["always_relay"] == "1" else 0

    def noised(self, noise: CountNoise) -> Measures:
        """A copy with noise on every count; parts never exceed the noisy session count."""
        s = noise(self.sessions)
        parts = {m: min(s, noise(getattr(self, m))) for m in MEASURES[1:]}
        return Measures(sessions=s, **parts)


class Suppressed(BaseModel):
    """What k-anonymity withheld: a count of rows, and their sessions when that is ≥ k."""

    rows: int = 0
    sessions: int | None = Field(
        default=0, description="Sessions in suppressed rows; null when fewer than k."
    )


class Report(BaseModel):
    """One released report."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str
    period: str
    k: int
    epsilon: float | None = None
    columns: list[str]
    rows: list[dict[str, Value]]
    suppressed: Suppressed


def group(cube: Mapping[str, int], dims: tuple[str, ...],
          where: Callable[[Mapping[str, str]], bool] | None = None) -> dict[Key, Measures]:
    """Sum the cube's cells into groups keyed by the values of `dims`."""
    out: dict[Key, Measures] = {}
    for cell, n in cube.items():
        d = decode(cell)
        if where is not None and not where(d):
            continue
        key = tuple(d[x] for x in dims)
        out.setdefault(key, Measures()).add(d, n)
    return out


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _none(v: str) -> str:
    return "none" if v == NONE else v


@dataclass(frozen=True, slots=True)
class Spec:
    """A fixed grouping: its dimensions, filter, columns and how a group becomes a row."""

    description: str
    dims: tuple[str, ...]
    columns: tuple[str, ...]
    row: Callable[[Key, Measures], dict[str, Value]]
    where: Callable[[Mapping[str, str]], bool] | None = None
    public: bool = False
    measures: int = 2
    extra: dict[str, str] = field(default_factory=dict)


def _browser_row(key: Key, m: Measures) -> dict[str, Value]:
    return {"browser": key[0], "browser_major": int(key[1]), "os": key[2],
            "sessions": m.sessions, "failures": m.failures,
            "failure_rate": _rate(m.failures, m.sessions)}


def _connectivity_row(key: Key, m: Measures) -> dict[str, Value]:
    return {"browser": key[0], "browser_major": int(key[1]), "os": key[2],
            "failure_stage": _none(key[3]), "local_candidate": _none(key[4]),
            "remote_candidate": _none(key[5]), "relay_protocol": _none(key[6]),
            "sessions": m.sessions}


def _features_row(key: Key, m: Measures) -> dict[str, Value]:
    return {"browser": key[0], "sessions": m.sessions,
            "screen_share_share": _rate(m.screen_share, m.sessions),
            "mute_use_share": _rate(m.mute_used, m.sessions),
            "camera_off_share": _rate(m.camera_off, m.sessions),
            "always_relay_share": _rate(m.always_relay, m.sessions)}


def _family_row(key: Key, m: Measures) -> dict[str, Value]:
    return {"browser": key[0], "sessions": m.sessions,
            "failure_rate": _rate(m.failures, m.sessions)}


def _stage_row(key: Key, m: Measures) -> dict[str, Value]:
    return {"failure_stage": _none(key[0]), "sessions": m.sessions}


def _candidate_row(key: Key, m: Measures) -> dict[str, Value]:
    return {"local_candidate": _none(key[0]), "sessions": m.sessions}


REGRESSION_COLUMNS: Final[tuple[str, ...]] = (
    "browser", "browser_major", "sessions", "failures", "failure_rate", "ci_low", "ci_high",
    "previous_major", "previous_sessions", "previous_failure_rate", "previous_ci_low",
    "previous_ci_high",
)

REPORTS: Final[dict[str, Spec]] = {
    "browsers": Spec(
        "Sessions and connect-failure rate by browser family + major version × OS family.",
        ("browser", "browser_major", "os"),
        ("browser", "browser_major", "os", "sessions", "failures", "failure_rate"),
        _browser_row),
    "connectivity": Spec(
        "Sessions by browser family + major × OS family × failure stage (none = connected) "
        "× selected candidate types and relay protocol.",
        ("browser", "browser_major", "os", "failure_stage", "local_candidate",
         "remote_candidate", "relay_protocol"),
        ("browser", "browser_major", "os", "failure_stage", "local_candidate",
         "remote_candidate", "relay_protocol", "sessions"),
        _connectivity_row, measures=1),
    "features": Spec(
        "Shares of sessions with screen sharing, mute/unmute use, camera off and "
        "always-relay, by browser family.",
        ("browser",),
        ("browser", "sessions", "screen_share_share", "mute_use_share", "camera_off_share",
         "always_relay_share"),
        _features_row, public=True, measures=5),
    "regressions": Spec(
        "Browser versions whose connect-failure rate is significantly above the previous "
        "major of the same browser (95 % Wilson score intervals do not overlap).",
        ("browser", "browser_major"), REGRESSION_COLUMNS, _family_row),
    "families": Spec(
        "Sessions and connect-failure rate by browser family.",
        ("browser",), ("browser", "sessions", "failure_rate"), _family_row, public=True),
    "failure-stages": Spec(
        "Connect failures by the stage that failed.",
        ("failure_stage",), ("failure_stage", "sessions"), _stage_row,
        where=lambda d: d["event"] == "connect-failure", public=True, measures=1),
    "candidates": Spec(
        "Connected sessions by the type of this browser's selected candidate.",
        ("local_candidate",), ("local_candidate", "sessions"), _candidate_row,
        where=lambda d: d["event"] == "session-end", public=True, measures=1),
}
PUBLIC: Final[tuple[str, ...]] = tuple(n for n, s in REPORTS.items() if s.public)


def _suppress(groups: dict[Key, Measures], k: int) -> tuple[dict[Key, Measures], Suppressed]:
    kept = {key: m for key, m in groups.items() if m.sessions >= k}
    small = [m.sessions for m in groups.values() if 0 < m.sessions < k]
    total = sum(small)
    return kept, Suppressed(rows=len(small), sessions=total if total >= k or total == 0 else None)


def _regressions(kept: dict[Key, Measures]) -> list[dict[str, Value]]:
    by_browser: dict[str, list[tuple[int, Measures]]] = {}
    for (family, major_text), m in kept.items():
        if family != "Other":
            by_browser.setdefault(family, []).append((int(major_text), m))
    rows: list[dict[str, Value]] = []
    for browser, versions in sorted(by_browser.items()):
        versions.sort(key=lambda v: v[0])
        for (prev_major, prev), (major, cur) in itertools.pairwise(versions):
            lo, hi = wilson_interval(cur.failures, cur.sessions)
            plo, phi = wilson_interval(prev.failures, prev.sessions)
            if lo > phi:
                rows.append({
                    "browser": browser, "browser_major": major, "sessions": cur.sessions,
                    "failures": cur.failures, "failure_rate": _rate(cur.failures, cur.sessions),
                    "ci_low": round(lo, 4), "ci_high": round(hi, 4),
                    "previous_major": prev_major, "previous_sessions": prev.sessions,
                    "previous_failure_rate": _rate(prev.failures, prev.sessions),
                    "previous_ci_low": round(plo, 4), "previous_ci_high": round(phi, 4),
                })
    return rows


def build_report(name: str, cube: Mapping[str, int], *, k: int, period: str,
                 epsilon: float | None = None) -> Report:
    """Build report `name` from a period's cube.

    Args:
        name: one of `REPORTS`.
        cube: the period's `cell -> sessions`.
        k: the k-anonymity threshold.
        period: the period's label (echoed in the report).
        epsilon: differential-privacy epsilon, or None for exact counts.

    Returns:
        The report, rows sorted by their grouping, small rows only counted in `suppressed`.

    Raises:
        UnknownReport: no report of that name.
    """
    spec = REPORTS.get(name)
    if spec is None:
        raise UnknownReport(f"no report named {name[:40]!r}")
    groups = group(cube, spec.dims, spec.where)
    if epsilon is not None:
        noise = CountNoise(epsilon, sensitivity=spec.measures)
        groups = {key: m.noised(noise) for key, m in groups.items()}
    kept, suppressed = _suppress(groups, k)
    if name == "regressions":
        rows = _regressions(kept)
    else:
        rows = [spec.row(key, kept[key]) for key in sorted(kept, key=_sort_key)]
    return Report(name=name, description=spec.description, period=period, k=k,
                  epsilon=epsilon, columns=list(spec.columns), rows=rows,
                  suppressed=suppressed)


def _sort_key(key: Key) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(v)) if v.isdigit() else (1, v) for v in key)


def to_csv(report: Report) -> str:
    """The report's rows as CSV with a header line (suppression goes in HTTP headers)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=report.columns, lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in report.columns})
    return buf.getvalue()
