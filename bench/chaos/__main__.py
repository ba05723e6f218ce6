"""`python -m bench.chaos`: every fault in both modes on the dev stack; prints the table and
writes it into docs/resilience.md between its markers (a bounded run of a few minutes)."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench.chaos import processes
from bench.chaos.scenarios import BY_KEY, FAULTS, run_fault, stack_ready, wait_until
from bench.chaos.table import Outcome, render, splice
from tests.stack import Stack, start_stack

#: Every probe comes from this machine's one address: let it be many people.
STACK_ENV = {"PARLEY_JOIN_RATE": "50", "PARLEY_JOIN_BURST": "500", "PARLEY_METRICS_RATE": "50",
             "PARLEY_METRICS_BURST": "500"}
DOC = Path(__file__).resolve().parents[2] / "docs" / "resilience.md"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync",
]


def _stack(mode: str, relays: bool) -> Stack:
    extra = ["--relays", "2"] if relays else []
    return start_stack(signaling_replicas=2, force_relay=mode == "relay-forced", extra=extra,
                       env=STACK_ENV)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    ap.add_argument("--faults", default="relay,signaling,nats,redis,rooms",
                    help="comma-separated: relay, signaling, nats, redis, rooms")
    ap.add_argument("--modes", default="direct,relay-forced",
                    help="comma-separated: direct, relay-forced")
    ap.add_argument("--bound", type=float, default=60.0,
                    help="seconds a fault has to heal before it is 'not recovered'")
    ap.add_argument("--settle", type=float, default=8.0,
                    help="seconds the call must keep working to count as healed")
    ap.add_argument("--no-write", action="store_true", help="do not touch docs/resilience.md")
    args = ap.parse_args(argv)
    faults = [BY_KEY[k.strip()] for k in args.faults.split(",") if k.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chaos: chromium is not installed", file=sys.stderr)
        return 2
    relays = processes.dev_supports("--relays")
    if not relays:
        print("chaos: this `parley dev` has no --relays: one relay, so fault 1 leaves "
              "relay-forced calls nowhere to go", file=sys.stderr)
    results: dict[str, dict[str, Outcome]] = {f.key: {} for f in faults}
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS,
                                     headless=True)

        def new_page() -> Any:
            ctx = browser.new_context(permissions=["camera", "microphone"])
            return ctx.new_page()

        for mode in modes:
            stack = _stack(mode, relays)
            try:
                for fault in faults:
                    started = time.monotonic()
                    if not wait_until(lambda: stack_ready(stack), args.bound):  # noqa: B023
                        results[fault.key][mode] = Outcome(None, args.bound,
                                                           skipped="stack not ready")
                        continue
                    try:
                        outcome = run_fault(fault, stack, new_page, bound=args.bound,
                                            settle=args.settle)
                    except Exception as exc:  # report it and go on with the next fault
                        outcome = Outcome(None, args.bound,
                                          skipped=f"{type(exc).__name__}: {exc}"[:120])
                    results[fault.key][mode] = outcome
                    print(f"chaos: {mode:12} {fault.title}: {outcome.cell()} "
                          f"[{time.monotonic() - started:.0f} s]", flush=True)
            finally:
                stack.stop()
        browser.close()

    table = render([(f.title, results[f.key]) for f in FAULTS if f.key in results])
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    note = (f"Measured by `make chaos` on {stamp} (2 signalling replicas, "
            f"{'2 relays' if relays else '1 relay'}; polled about once a second; a fault "
            f"counts as healed once the call kept working for {args.settle:.0f} s).")
    print()
    print(table)
    print()
    print(note)
    if not args.no_write:
        DOC.write_text(splice(DOC.read_text(), f"{table}\n\n{note}"))
        print(f"chaos: the table is in {DOC}")
    # "not recovered" is a figure, not a crash; a failed check (a stranger let in) fails
    return 1 if any(o.failed_checks for r in results.values() for o in r.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
