"""Reports from a cube: fixed groupings, k suppression, regressions, CSV, noise."""

from __future__ import annotations

import pytest

from services.metrics.cube import cell_of, decode, merge
from services.metrics.errors import UnknownReport
from services.metrics.reports import REPORTS, build_report, to_csv
from services.metrics.schema import BeaconRecord, ClientInfo

K = 10


def rec(browser: str = "Firefox", major: int = 128, os: str = "Linux",
        failure: str | None = None, **over: object) -> BeaconRecord:
    client = ClientInfo(browser=browser, browser_major=major, os=os, device="desktop")  # type: ignore[arg-type]
    return BeaconRecord(day="2026-11-24", client=client,
                        event="connect-failure" if failure else "session-end",
                        failure_stage=failure, **over)  # type: ignore[arg-type]


def cube(*pairs: tuple[BeaconRecord, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r, n in pairs:
        out[cell_of(r)] = out.get(cell_of(r), 0) + n
    return out


def test_cell_roundtrip_has_no_day_or_nonce() -> None:
    r = rec(local_candidate="relay", relay_protocol="tls", screen_share=True)
    d = decode(cell_of(r))
    assert d["browser"] == "Firefox" and d["relay_protocol"] == "tls"
    assert d["screen_share"] == "1" and d["failure_stage"] == "-"
    assert "2026" not in cell_of(r)


def test_browsers_nine_sessions_suppressed() -> None:
    report = build_report("browsers", cube((rec(), 9)), k=K, period="p")
    assert report.rows == []
    assert report.suppressed.rows == 1
    assert report.suppressed.sessions is None  # 9 < k: not even the total is told


def test_browsers_ten_sessions_present() -> None:
    report = build_report("browsers", cube((rec(), 8), (rec(failure="ice"), 2)), k=K, period="p")
    assert report.rows == [{"browser": "Firefox", "browser_major": 128, "os": "Linux",
                            "sessions": 10, "failures": 2, "failure_rate": 0.2}]
    assert report.suppressed.rows == 0


def test_suppressed_total_told_when_at_least_k() -> None:
    c = cube((rec(), 50), (rec(major=1), 6), (rec(major=2), 6))
    report = build_report("browsers", c, k=K, period="p")
    assert len(report.rows) == 1
    assert report.suppressed.rows == 2 and report.suppressed.sessions == 12


def test_connectivity_groups_stage_and_candidates() -> None:
    c = cube((rec(local_candidate="relay", relay_protocol="tcp", remote_candidate="relay",
                  protocol="udp"), 12), (rec(failure="dtls"), 3))
    report = build_report("connectivity", c, k=K, period="p")
    assert report.rows == [{"browser": "Firefox", "browser_major": 128, "os": "Linux",
                            "failure_stage": "none", "local_candidate": "relay",
                            "remote_candidate": "relay", "relay_protocol": "tcp",
                            "sessions": 12}]
    assert report.suppressed.rows == 1


def test_features_shares_by_family() -> None:
    c = cube((rec(screen_share=True, mute_toggles="3+"), 5), (rec(camera_off=True), 15))
    (row,) = build_report("features", c, k=K, period="p").rows
    assert row["sessions"] == 20
    assert row["screen_share_share"] == 0.25 and row["mute_use_share"] == 0.25
    assert row["camera_off_share"] == 0.75 and row["always_relay_share"] == 0.0


def test_regressions_flags_significant_rise_only() -> None:
    c = cube(
        (rec(major=127), 400), (rec(major=127, failure="ice"), 4),      # 1 %
        (rec(major=128), 300), (rec(major=128, failure="ice"), 60),     # ~17 %: regression
        (rec(major=129), 340), (rec(major=129, failure="ice"), 66),     # same as 128: not
        (rec(browser="Safari", major=17), 100), (rec(browser="Safari", major=18), 100),
        (rec(browser="Safari", major=18, failure="dtls"), 3),           # 1 vs 3 %: noise
        (rec(major=130), 5),                                            # below k: not compared
    )
    report = build_report("regressions", c, k=K, period="p")
    assert [(r["browser"], r["browser_major"], r["previous_major"]) for r in report.rows] == [
        ("Firefox", 128, 127)]
    row = report.rows[0]
    assert isinstance(row["ci_low"], float) and isinstance(row["previous_ci_high"], float)
    assert row["ci_low"] > row["previous_ci_high"]
    assert report.suppressed.rows == 1


def test_public_reports_use_coarse_groupings() -> None:
    c = cube((rec(local_candidate="host"), 10), (rec(failure="signalling"), 10),
             (rec(failure="ice"), 2))
    assert build_report("failure-stages", c, k=K, period="p").rows == [
        {"failure_stage": "signalling", "sessions": 10}]
    assert build_report("candidates", c, k=K, period="p").rows == [
        {"local_candidate": "host", "sessions": 10}]
    assert {n for n, s in REPORTS.items() if s.public} == {
        "features", "families", "failure-stages", "candidates"}


def test_build_report_unknown_name() -> None:
    with pytest.raises(UnknownReport):
        build_report("everything", {}, k=K, period="p")


def test_to_csv_header_and_rows() -> None:
    report = build_report("browsers", cube((rec(), 10)), k=K, period="p")
    assert to_csv(report).splitlines() == [
        "browser,browser_major,os,sessions,failures,failure_rate",
        "Firefox,128,Linux,10,0,0.0",
    ]


def test_merge_sums_days() -> None:
    assert merge([{"a": 1, "b": 2}, {"a": 3}]) == {"a": 4, "b": 2}


def test_noise_changes_counts_but_keeps_shape() -> None:
    pytest.importorskip("opendp")
    c = cube((rec(), 1000), (rec(failure="ice"), 100))
    report = build_report("browsers", c, k=K, period="p", epsilon=1.0)
    (row,) = report.rows
    assert report.epsilon == 1.0
    assert isinstance(row["sessions"], int) and abs(row["sessions"] - 1100) < 200
    assert isinstance(row["failures"], int) and 0 <= row["failures"] <= row["sessions"]
