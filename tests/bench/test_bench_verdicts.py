"""The pure parts of the load and soak benches: growth verdicts, log scan, stepping."""

from __future__ import annotations

from collections import Counter

from bench.load.steps import StepResult, percentile, sustained
from bench.procs import Sample, scan_log, verdict
from bench.stack import process_name


def _series(rss: list[int], fds: list[int] | None = None, pid: int = 7) -> list[Sample]:
    fds = fds or [10] * len(rss)
    return [Sample(60.0 * i, pid, r, f) for i, (r, f) in enumerate(zip(rss, fds, strict=True))]


def test_verdict_flat_series_ok() -> None:
    assert verdict(_series([100_000, 101_000, 100_500, 100_800, 100_700, 100_900])) == "ok"


def test_verdict_rise_then_plateau_ok() -> None:
    assert verdict(_series([80_000, 95_000, 99_000, 99_100, 99_100, 99_050, 99_200])) == "ok"


def test_verdict_steady_rss_rise_flagged() -> None:
    rss = [100_000 + 1500 * i for i in range(8)]
    assert verdict(_series(rss)) == "RSS grows"


def test_verdict_steady_fd_rise_flagged() -> None:
    fds = [20, 21, 23, 24, 26, 27, 29]
    assert verdict(_series([50_000] * 7, fds)) == "fds grow"


def test_verdict_fd_jitter_ok() -> None:
    assert verdict(_series([50_000] * 7, [20, 24, 19, 23, 21, 22, 20])) == "ok"


def test_verdict_pid_change_is_restart() -> None:
    assert verdict(_series([1, 1]) + _series([1], pid=8)) == "restarted"


def test_verdict_few_samples_not_judged() -> None:
    assert verdict(_series([1, 2, 3])).startswith("ok (too few")


def test_scan_log_counts_errors_tracebacks_and_restarts() -> None:
    text = "\n".join([
        "2026-11-29 10:00:00,000 INFO rooms x: started",
        "2026-11-29 10:00:01,000 WARNING signaling y: slow",
        "2026-11-29 10:00:02,000 ERROR signaling y: boom",
        "Traceback (most recent call last):",
        "[123] 2026/11/29 10:00:03.000000 [ERR] something",
        "parley dev: relay exited with code -9; restarting in 0.5 s (restart 1)",
    ])
    scan = scan_log(text)
    assert (scan.errors, scan.warnings) == (4, 1)
    assert scan.examples[0].endswith("ERROR signaling y: boom")


def test_process_name_service_and_program() -> None:
    assert process_name(["/v/bin/python", "-m", "services", "rooms", "--port", "1"]) == "rooms"
    assert process_name(["/x/redis-server 127.0.0.1:6379"]) == "redis-server"
    assert process_name(["/x/nats-server", "-js"]) == "nats-server"


def _step(rate: float, p99: float, errors: int = 0) -> StepResult:
    r = StepResult(rate, 1.0, latencies_ms=[p99] * 10, done=10, wall_s=1.0)
    if errors:
        r.errors = Counter({"RuntimeError: x": errors})
    return r


def test_sustained_highest_passing_before_two_failures() -> None:
    steps = [_step(10, 20), _step(20, 150), _step(40, 50), _step(80, 120), _step(160, 300),
             _step(320, 10)]
    assert sustained(steps) == 40


def test_sustained_errors_fail_a_step() -> None:
    assert sustained([_step(10, 20), _step(20, 20, errors=1), _step(40, 20, errors=2)]) == 10


def test_percentile_nearest_rank() -> None:
    assert percentile([float(i) for i in range(1, 101)], 0.99) == 100.0
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
