"""The soak's printed report: one row per process (RSS and descriptors at the start and end,
CPU, verdict), then what the clients did and the errors found in the logs."""

from __future__ import annotations

from typing import Any

from bench.procs import LogScan, Sample, verdict


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def rows(series: dict[str, list[Sample]], *, elapsed: float) -> list[dict[str, Any]]:
    """One row per process: start/end RSS (MiB) and fds, CPU % of one core, verdict."""
    out: list[dict[str, Any]] = []
    for name, samples in series.items():
        if not samples:
            out.append({"process": name, "verdict": "gone"})
            continue
        first, last = samples[0], samples[-1]
        cpu = (last.cpu_s - first.cpu_s) / elapsed * 100 if elapsed > 0 else 0.0
        out.append({
            "process": name,
            "rss_mib_start": _mib(first.rss_kib), "rss_mib_end": _mib(last.rss_kib),
            "rss_mib_max": _mib(max(s.rss_kib for s in samples)),
            "fds_start": first.fds, "fds_end": last.fds, "fds_max": max(s.fds for s in samples),
            "cpu_percent": round(cpu, 1),
            "rss_mib_series": [_mib(s.rss_kib) for s in samples],
            "fds_series": [s.fds for s in samples],
            "verdict": verdict(samples)})
    return out


def table(table_rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table (it reads as well in a terminal)."""
    head = ("| process | RSS MiB start | RSS MiB end | fds start | fds end | CPU % (1 core) "
            "| verdict |\n|---|---:|---:|---:|---:|---:|---|")
    lines = [head]
    for r in table_rows:
        if "rss_mib_start" not in r:
            lines.append(f"| {r['process']} | | | | | | {r['verdict']} |")
            continue
        lines.append(f"| {r['process']} | {r['rss_mib_start']} | {r['rss_mib_end']} "
                     f"| {r['fds_start']} | {r['fds_end']} | {r['cpu_percent']} "
                     f"| {r['verdict']} |")
    return "\n".join(lines)


def log_lines(scans: dict[str, LogScan]) -> str:
    """"errors in the stack's logs: N (…)" and the first examples."""
    total = sum(s.errors for s in scans.values())
    per = ", ".join(f"{k} {s.errors}" for k, s in scans.items())
    warnings = sum(s.warnings for s in scans.values())
    text = f"errors in the stack's logs: {total} ({per}); warnings: {warnings}"
    for name, s in scans.items():
        for ex in s.examples:
            text += f"\n  {name}: {ex}"
        for ex in s.warning_examples:
            text += f"\n  {name} (warning): {ex}"
    return text
