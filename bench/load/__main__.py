"""Load: `python -m bench.load [--seconds 6] [--join-rates ...] [--connect-rates ...]`.

Starts the dev stack (`bench.stack`, per-address limits raised) and finds, by stepping an
open-loop offered rate up (`bench.load.steps`), the highest rate with p99 < 100 ms and no
error of:

1. **joins/s of the rooms API**, as the web client makes them through the gateway: a room
   created (`POST /api/rooms`) for every `--per-room` joins (`POST /api/rooms/{name}/join`,
   which admits the peer in Redis, publishes on NATS, writes the diagnostic record and mints
   the TURN credential and join token). Every request's latency counts (creates too).
2. **websocket connects/s of signalling**: a fresh websocket to the gateway's `/ws`, `join`
   with a token from rooms (fetched before the step, not timed), until `welcome`; the
   socket then says `leave` (not timed). Rooms hold `--per-room` peers.

The load generator is one Python process on the same 2 cores as the stack: its CPU is
reported beside the stack's, per step.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from websockets.asyncio.client import connect

from bench import stack as bench_stack
from bench.load.steps import (
    P99_TARGET_MS,
    StepResult,
    percentile,
    run_step,
    sustained,
    throughput,
)
from bench.procs import sample

JOIN_RATES = [10, 20, 40, 60, 80, 100, 125, 150, 200, 250, 300, 400, 500]
CONNECT_RATES = [10, 20, 40, 60, 80, 100, 125, 150, 200, 250, 300, 400, 500]
TIMEOUT = 10.0
CLIENT = "load-generator"
#: Tokens are fetched before a connects step: their slots must outlive it (rooms releases a
#: slot whose socket has not joined within PARLEY_JOIN_GRACE, 15 s by default).
STACK_ENV = {"PARLEY_JOIN_GRACE": "600"}


def _cpu(stack: bench_stack.BenchStack, rss: dict[str, float] | None = None) -> dict[str, float]:
    """CPU seconds so far of every stack process and of this one; their RSS (MiB) into `rss`."""
    out: dict[str, float] = {}
    for name, pid in stack.processes().items():
        s = sample(pid, t=0.0)
        if s is not None:
            out[name] = s.cpu_s
            if rss is not None:
                rss[name] = round(s.rss_kib / 1024, 1)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out[CLIENT] = ru.ru_utime + ru.ru_stime
    return out


class Joins:
    """Operation `i` of the joins phase: a create for the first join of each room, then the
    join (both timed)."""

    def __init__(self, api: httpx.AsyncClient, per_room: int) -> None:
        self.api, self.per_room = api, per_room
        self.rooms: dict[int, asyncio.Future[str]] = {}

    def _room(self, k: int) -> asyncio.Future[str]:
        if k not in self.rooms:
            self.rooms[k] = asyncio.get_running_loop().create_future()
        return self.rooms[k]

    async def create(self, k: int) -> float:
        fut = self._room(k)
        t = time.perf_counter()
        try:
            r = await self.api.post("/api/rooms", json={})
            if r.status_code != 201:
                raise RuntimeError(f"create answered {r.status_code}")
        except Exception as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: the joins of this room fail on their own
            raise
        fut.set_result(r.json()["name"])
        return 1000 * (time.perf_counter() - t)

    async def join(self, room: str) -> tuple[float, dict[str, Any]]:
        t = time.perf_counter()
        r = await self.api.post(f"/api/rooms/{room}/join", json={"password": None})
        if r.status_code != 200:
            raise RuntimeError(f"join answered {r.status_code}")
        return 1000 * (time.perf_counter() - t), r.json()

    async def op(self, i: int) -> list[float]:
        k, j = divmod(i, self.per_room)
        lat = [await self.create(k)] if j == 0 else []
        room = await self._room(k)
        lat.append((await self.join(room))[0])
        return lat


class Connects:
    """Operation `i` of the connects phase: open, `join`, `welcome` (timed); `leave`."""

    def __init__(self, ws_base: str, infos: list[dict[str, Any]]) -> None:
        self.ws_base, self.infos = ws_base, infos
        self.closing: list[asyncio.Task[None]] = []

    async def op(self, i: int) -> list[float]:
        info = self.infos[i]
        url = info["signaling_url"]
        url = self.ws_base + url if url.startswith("/") else url
        t = time.perf_counter()
        ws = await connect(url, proxy=None, compression=None, open_timeout=TIMEOUT,
                           ping_interval=None)
        try:
            await ws.send(json.dumps({"type": "join", "token": info["token"],
                                      "room": info["room"]["name"]}))
            welcome = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        except BaseException:
            await ws.close()
            raise
        lat = 1000 * (time.perf_counter() - t)
        if welcome.get("type") != "welcome":
            await ws.close()
            raise RuntimeError(f"no welcome: {str(welcome)[:60]}")
        self.closing.append(asyncio.create_task(self._leave(ws)))
        return [lat]

    @staticmethod
    async def _leave(ws: Any) -> None:
        with contextlib.suppress(Exception):
            await ws.send('{"type":"leave"}')
            await asyncio.wait_for(ws.wait_closed(), TIMEOUT)
        await ws.close()


async def prefetch(api: httpx.AsyncClient, n: int, per_room: int) -> list[dict[str, Any]]:
    """`n` join answers (rooms of `per_room` peers), fetched 32 at a time."""
    joins = Joins(api, per_room)
    sem = asyncio.Semaphore(32)

    async def one(i: int) -> dict[str, Any]:
        async with sem:
            k, j = divmod(i, per_room)
            if j == 0:
                await joins.create(k)
            return (await joins.join(await joins._room(k)))[1]

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def _line(phase: str, r: StepResult) -> str:
    server = sum(v for k, v in r.cpu_s.items() if k != CLIENT) / max(r.wall_s, 1e-9)
    errs = sum(r.errors.values())
    client_ms = 1000 * r.cpu_s.get(CLIENT, 0.0) / max(r.done, 1)
    return (f"{phase} {r.rate:6.0f}/s offered  {r.achieved:6.1f}/s done  p50 {r.p50:6.1f} ms  "
            f"p99 {r.p99:6.1f} ms  errors {errs:4d}  CPU/op stack "
            f"{r.cpu_ms_per_op(exclude=CLIENT):.1f} ms, client {client_ms:.1f} ms  "
            f"client {r.cores(CLIENT):.2f} cores  "
            f"stack {server:.2f} cores (rooms {r.cores('rooms'):.2f}, signaling "
            f"{r.cores('signaling'):.2f}, gateway {r.cores('gateway'):.2f}, redis "
            f"{r.cores('redis-server'):.2f}, nats {r.cores('nats-server'):.2f})  "
            f"{'PASS' if r.passed() else 'fail'}{'' if r.keeps_up() else ' (behind)'}")


async def idle_cores(stack: bench_stack.BenchStack, seconds: float = 3.0) -> dict[str, float]:
    """Each process's CPU (cores) with no load: timers, heartbeats; taken off each step."""
    before = _cpu(stack)
    t = time.perf_counter()
    await asyncio.sleep(seconds)
    after = _cpu(stack)
    wall = time.perf_counter() - t
    return {k: (after[k] - before[k]) / wall for k in after if k in before and k != CLIENT}


async def _phase(name: str, rates: list[float], seconds: float,
                 stack: bench_stack.BenchStack,
                 make: Callable[[float], Awaitable[Callable[[int], Awaitable[list[float]]]]],
                 idle: dict[str, float], warmup: float) -> list[StepResult]:
    results: list[StepResult] = []
    if warmup > 0:
        await run_step(rates[0], warmup, await make(rates[0]))  # not counted
    for rate in rates:
        op = await make(rate)
        before = _cpu(stack)
        r = await run_step(rate, seconds, op)
        after = _cpu(stack, r.rss_mib)
        r.cpu_s = {k: max(0.0, after[k] - before[k] - idle.get(k, 0.0) * r.wall_s)
                   for k in after if k in before}
        results.append(r)
        print(_line(name, r), file=sys.stderr, flush=True)
        if r.errors:
            print(f"  errors: {dict(r.errors)}", file=sys.stderr, flush=True)
        if len(results) >= 2 and not results[-1].keeps_up() and not results[-2].keeps_up():
            break  # two steps in a row with errors or a backlog: past its throughput
        await asyncio.sleep(1.0)  # let the stack settle between steps
    return results


async def run(args: argparse.Namespace, stack: bench_stack.BenchStack) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=args.connections,
                          max_keepalive_connections=args.connections)
    async with httpx.AsyncClient(base_url=stack.url, limits=limits, timeout=TIMEOUT,
                                 trust_env=False) as api:
        await (await api.post("/api/rooms", json={})).aread()  # warm the connection pool

        async def joins(rate: float) -> Callable[[int], Awaitable[list[float]]]:
            return Joins(api, args.per_room).op

        pending: list[Connects] = []

        async def connects(rate: float) -> Callable[[int], Awaitable[list[float]]]:
            for c in pending:  # the previous step's leaves, before the next prefetch
                await asyncio.gather(*c.closing)
            infos = await prefetch(api, max(1, int(rate * args.seconds)), args.per_room)
            pending.append(Connects(stack.ws_base, infos))
            return pending[-1].op

        idle = await idle_cores(stack, args.idle_seconds)
        out: dict[str, list[StepResult]] = {}
        if "joins" in args.phases:
            out["joins"] = await _phase("joins   ", args.join_rates, args.seconds, stack, joins,
                                        idle, args.warmup)
        if "connects" in args.phases:
            out["connects"] = await _phase("connects", args.connect_rates, args.seconds, stack,
                                           connects, idle, args.warmup)
            for c in pending:
                await asyncio.gather(*c.closing)
    return {
        "idle_stack_cores": round(sum(idle.values()), 3),
        **{phase: {"sustained_per_second": sustained(rs), "throughput_per_second": throughput(rs),
                **_cost(rs), "steps": [{
            "rate": r.rate, "achieved": round(r.achieved, 1), "p50_ms": round(r.p50, 1),
            "p99_ms": round(r.p99, 1), "errors": dict(r.errors),
            "client_cores": round(r.cores(CLIENT), 2),
            "stack_cpu_ms_per_op": round(r.cpu_ms_per_op(exclude=CLIENT), 2),
            "stack_cores": round(sum(v for k, v in r.cpu_s.items() if k != CLIENT)
                                 / max(r.wall_s, 1e-9), 2),
            "cores_by_process": {k: round(v / max(r.wall_s, 1e-9), 2)
                                 for k, v in sorted(r.cpu_s.items())},
            "rss_mib_after": r.rss_mib, "passed": r.passed()}
            for r in rs]}
           for phase, rs in out.items()}}


def _cost(results: list[StepResult]) -> dict[str, float]:
    """CPU ms per operation (median over the steps that kept up) of the stack and of the
    load generator, and the rates 2 free cores would allow at that cost."""
    ok = [r for r in results if r.keeps_up()] or results
    stack = percentile([r.cpu_ms_per_op(exclude=CLIENT) for r in ok], 0.5)
    client = percentile([1000 * r.cpu_s.get(CLIENT, 0.0) / max(r.done, 1) for r in ok], 0.5)
    cores = float(os.cpu_count() or 1)
    return {"stack_cpu_ms_per_op": round(stack, 2), "client_cpu_ms_per_op": round(client, 2),
            "cpu_bound_per_second_stack_alone": round(1000 * cores / stack) if stack else 0,
            "cpu_bound_per_second_with_client": round(1000 * cores / (stack + client))
            if stack + client else 0}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=6.0, help="length of each step")
    ap.add_argument("--join-rates", type=float, nargs="+", default=JOIN_RATES)
    ap.add_argument("--connect-rates", type=float, nargs="+", default=CONNECT_RATES)
    ap.add_argument("--phases", nargs="+", default=["joins", "connects"],
                    choices=["joins", "connects"])
    ap.add_argument("--per-room", type=int, default=4, help="peers per room (capacity 6)")
    ap.add_argument("--connections", type=int, default=256,
                    help="HTTP keep-alive connections of the load generator")
    ap.add_argument("--warmup", type=float, default=2.0,
                    help="seconds at the first rate before the steps, not counted")
    ap.add_argument("--idle-seconds", type=float, default=3.0,
                    help="idle CPU measured first and taken off each step's CPU")
    ap.add_argument("--json", help="also write the result here")
    return ap


def main() -> None:
    args = parser().parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    stack = bench_stack.start(env=STACK_ENV)
    try:
        result = asyncio.run(run(args, stack))
    finally:
        code = stack.stop()
        stack.cleanup()
    result.update(started=started, cpus=os.cpu_count(), load_average=os.getloadavg(),
                  stack_exit_code=code, step_seconds=args.seconds,
                  p99_target_ms=P99_TARGET_MS)
    print(f"\nload {started}, {os.cpu_count()} CPUs (load average now "
          f"{os.getloadavg()[0]:.1f}), steps of {args.seconds:.0f} s, open loop")
    for phase, res in result.items():
        if isinstance(res, dict) and "sustained_per_second" in res:
            best = next((s for s in res["steps"] if s["rate"] == res["sustained_per_second"]),
                        None)
            extra = (f" (p99 {best['p99_ms']} ms; load generator {best['client_cores']} "
                     f"cores, stack {best['stack_cores']} cores)") if best else ""
            top = next((s for s in res["steps"] if s["rate"] == res["throughput_per_second"]),
                       None)
            print(f"{phase}: {res['sustained_per_second']:.0f}/s sustained at p99 < "
                  f"{P99_TARGET_MS:.0f} ms with no error{extra}; kept up (no error, no "
                  f"backlog) to {res['throughput_per_second']:.0f}/s"
                  + (f" (p99 {top['p99_ms']} ms)" if top else "")
                  + f"; CPU per operation: stack {res['stack_cpu_ms_per_op']} ms, load "
                  f"generator {res['client_cpu_ms_per_op']} ms -> CPU-bound ceiling on "
                  f"{os.cpu_count()} free cores {res['cpu_bound_per_second_with_client']}/s "
                  f"({res['cpu_bound_per_second_stack_alone']}/s with the generator elsewhere)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    sys.exit(0 if code == 0 else 1)


if __name__ == "__main__":
    main()
