"""Soak: `python -m bench.soak [--minutes 15] [--rooms 50] [--media-rooms 2]`.

Starts the dev stack (`bench.stack`), creates the rooms through the rooms API, and keeps
them churning for the whole run: `--rooms` rooms of `--per-room` signalling-only clients
(`bench.soak.clients`: join, offers and candidates, chat, media-state, leave, rejoin) and
`--media-rooms` rooms with two real aiortc peers each through the relay
(`bench.soak.media`). After `--warmup` seconds it records RSS and open descriptors of every
process of the stack (and of itself), then every `--sample-every` seconds until the end;
it flags a process whose RSS or descriptors rose steadily over the last samples
(`bench.procs.verdict`), and counts the error lines and tracebacks in the stack's output and
NATS's and Redis's own logs. Prints a table and a JSON summary; exits 1 on any error or
growth.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from typing import Any

import httpx

from bench import stack as bench_stack
from bench.procs import Sample, sample, scan_log
from bench.soak import clients, media, report

SELF = "bench-client (this process, not the stack)"


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 1) if s else float("nan")


async def _record(stack: bench_stack.BenchStack, series: dict[str, list[Sample]],
                  t0: float) -> None:
    """One sample of every process the stack had at the start (by name) and of this one."""
    now = time.monotonic() - t0
    current = stack.processes()
    for name in series:
        pid = os.getpid() if name == SELF else current.get(name)
        s = sample(pid, t=now) if pid else None
        if s is not None:
            series[name].append(s)


async def run(args: argparse.Namespace, stack: bench_stack.BenchStack) -> dict[str, Any]:
    rng = random.Random(args.seed)
    tally, mtally = clients.Tally(), media.MediaTally()
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=stack.url, limits=limits, timeout=15.0,
                                 trust_env=False) as api:
        names = []
        for _ in range(args.rooms + args.media_rooms):
            r = await api.post("/api/rooms", json={})
            r.raise_for_status()
            names.append(r.json()["name"])
        tasks = [asyncio.create_task(clients.churn(
            api, stack.ws_base, names[i], tally, random.Random(rng.random()), stop,
            stay=(args.stay_min, args.stay_max), pause=(args.pause_min, args.pause_max)))
            for i in range(args.rooms) for _ in range(args.per_room)]
        tasks += [asyncio.create_task(media.calls(
            api, stack.ws_base, names[args.rooms + i], tally, mtally, stop, hold=args.hold))
            for i in range(args.media_rooms)]
        print(f"soak: {len(tasks)} clients in {len(names)} rooms; warm-up {args.warmup:.0f} s",
              file=sys.stderr, flush=True)
        await asyncio.sleep(args.warmup)
        series: dict[str, list[Sample]] = {name: [] for name in stack.processes()}
        series[SELF] = []
        t0 = time.monotonic()
        await _record(stack, series, t0)
        load = [round(os.getloadavg()[0], 1)]
        end = t0 + args.seconds
        while (now := time.monotonic()) < end:
            await asyncio.sleep(min(args.sample_every, end - now))
            await _record(stack, series, t0)
            mins = (time.monotonic() - t0) / 60
            load.append(round(os.getloadavg()[0], 1))
            print(f"soak: {mins:.1f} min, visits {tally.visits}, calls {mtally.calls}, "
                  f"client errors {sum(tally.errors.values())}, machine load {load[-1]}",
                  file=sys.stderr, flush=True)
        elapsed = time.monotonic() - t0
        stop.set()
        _, pending = await asyncio.wait(tasks, timeout=30)
        for t in pending:
            t.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*pending, return_exceptions=True)
    return {
        "elapsed_s": round(elapsed, 1),
        "machine_load_1m_per_sample": load,
        "rows": report.rows(series, elapsed=elapsed),
        "clients": {
            "signalling_clients": args.rooms * args.per_room, "rooms": args.rooms,
            "visits": tally.visits, "joins": tally.joins, "leaves": tally.leaves,
            "messages_sent": tally.sent, "messages_received": dict(tally.received),
            "join_ms_p50": _pct(tally.join_ms, 0.5), "join_ms_p99": _pct(tally.join_ms, 0.99),
            "signals_crossing_a_leave": tally.crossed_leave,
            "errors": dict(tally.errors), "error_examples": tally.examples},
        "media": {"rooms": args.media_rooms, "calls": mtally.calls,
                  "setup_ms_p50": _pct(mtally.setup_ms, 0.5),
                  "setup_ms_max": _pct(mtally.setup_ms, 1.0),
                  "video_frames": mtally.video_frames, "audio_frames": mtally.audio_frames,
                  "echoes": mtally.echoes, "failures": mtally.failures},
    }


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=15.0, help="measured run after warm-up")
    ap.add_argument("--seconds", type=float, help="the run in seconds (wins over --minutes)")
    ap.add_argument("--warmup", type=float, default=60.0)
    ap.add_argument("--sample-every", type=float, default=60.0)
    ap.add_argument("--rooms", type=int, default=50, help="signalling-only rooms")
    ap.add_argument("--per-room", type=int, default=3, help="clients per signalling room")
    ap.add_argument("--media-rooms", type=int, default=2, help="rooms with 2 aiortc peers")
    ap.add_argument("--stay-min", type=float, default=20.0)
    ap.add_argument("--stay-max", type=float, default=90.0)
    ap.add_argument("--pause-min", type=float, default=1.0)
    ap.add_argument("--pause-max", type=float, default=10.0)
    ap.add_argument("--hold", type=float, default=120.0, help="seconds a media call lasts")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="also write the summary here")
    return ap


def main() -> None:
    args = parser().parse_args()
    if args.seconds is None:
        args.seconds = args.minutes * 60
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    stack = bench_stack.start()
    try:
        result = asyncio.run(run(args, stack))
        infra = stack.infra_logs()
    finally:
        code = stack.stop()
    scans = {"stack output": scan_log(stack.log_text())}
    scans.update({f"{k} log": scan_log(v) for k, v in infra.items()})
    stack.cleanup()
    log_errors = sum(s.errors for s in scans.values())
    client_errors = sum(result["clients"]["errors"].values())
    grows = [r["process"] for r in result["rows"] if not r["verdict"].startswith("ok")
             and r["process"] != SELF]
    result.update(started=started, cpus=os.cpu_count(), load_average=os.getloadavg(),
                  stack_exit_code=code, log_errors=log_errors,
                  log_examples={k: [*s.examples, *s.warning_examples] for k, s in scans.items()
                                if s.examples or s.warning_examples},
                  method=(f"{args.rooms} rooms x {args.per_room} signalling-only clients, "
                          f"{args.media_rooms} rooms x 2 aiortc peers (relay only); warm-up "
                          f"{args.warmup:.0f} s, then {args.seconds:.0f} s sampled every "
                          f"{args.sample_every:.0f} s"))
    print(f"\nsoak {started}: {result['method']}")
    print(report.table(result["rows"]))
    c, m = result["clients"], result["media"]
    print(f"\nsignalling clients: {c['visits']} visits, {c['joins']} joins, {c['leaves']} leaves, "
          f"{c['messages_sent']} messages sent; join (API + socket + welcome) p50 "
          f"{c['join_ms_p50']} ms, p99 {c['join_ms_p99']} ms; signals that crossed a leave "
          f"(unknown-peer, expected) {c['signals_crossing_a_leave']}; client errors "
          f"{client_errors} {c['errors'] or ''}")
    for ex in c["error_examples"]:
        print(f"  {ex}")
    print(f"machine load (1 min) at each sample: {result['machine_load_1m_per_sample']}")
    print(f"media calls: {m['calls']} set up through the relay (p50 {m['setup_ms_p50']} ms), "
          f"{m['video_frames']} video / {m['audio_frames']} audio frames received, "
          f"{m['echoes']} data-channel echoes, {m['failures']} failures")
    print(report.log_lines(scans))
    print(f"stack exit code on Ctrl-C: {code}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    failed = log_errors or client_errors or m["failures"] or grows or code != 0
    print("verdict: " + ("FAIL" if failed else "PASS")
          + (f" (growth: {', '.join(grows)})" if grows else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
