"""Leak probe: `python -m bench.soak.rounds [--rounds 14] [--visits 600] [--tunnels 500]`.

The soak watches memory over time; this asks the sharper question "does memory grow per
operation?". It starts the dev stack and repeats identical rounds, each of `--visits`
short visits through rooms and signalling (join, `welcome`, one chat line, `leave`,
`POST .../leave`, 20 at a time over 10 rooms), `--tunnels` bare websocket tunnels through
the gateway (open, close) and as many `GET /config.json`; after each round it prints the
RSS (KiB) and descriptors of every stack process. A leak grows by the same amount every
round; an allocator reaching its working size grows less and less, then stops.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import httpx
from websockets.asyncio.client import connect

from bench import stack as bench_stack
from bench.procs import sample
from bench.soak import clients

CONCURRENCY = 20
ROOMS = 10


async def run(args: argparse.Namespace, stack: bench_stack.BenchStack) -> list[dict[str, int]]:
    procs = stack.processes()
    rounds: list[dict[str, int]] = []
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=stack.url, limits=limits, timeout=15.0,
                                 trust_env=False) as api:
        rooms = [(await api.post("/api/rooms", json={})).json()["name"] for _ in range(ROOMS)]
        tally = clients.Tally()
        sem = asyncio.Semaphore(CONCURRENCY)

        async def visit(i: int) -> None:
            async with sem:
                room = rooms[i % ROOMS]
                peer = await clients.join(api, stack.ws_base, room, tally)
                await clients.send(peer, {"type": "chat", "text": "probe " * 30}, tally)
                await clients.leave(api, room, peer, tally)

        async def tunnel() -> None:
            async with sem:
                ws = await connect(stack.ws_base + "/ws", proxy=None)
                await ws.close()
                await api.get("/config.json")

        for n in range(args.rounds):
            t = time.monotonic()
            await asyncio.gather(*(visit(i) for i in range(args.visits)),
                                 *(tunnel() for _ in range(args.tunnels)))
            await asyncio.sleep(2.0)
            row = {"round": n, "seconds": round(time.monotonic() - t)}
            for name, pid in procs.items():
                s = sample(pid, t=0.0)
                if s is not None:
                    row[f"{name} rss_kib"] = s.rss_kib
                    row[f"{name} fds"] = s.fds
            rounds.append(row)
            print(" ".join(f"{k}={v}" for k, v in row.items() if "rss" in k or k == "round")
                  + f" errors={sum(tally.errors.values())}", file=sys.stderr, flush=True)
    return rounds


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.soak.rounds", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=14)
    ap.add_argument("--visits", type=int, default=600)
    ap.add_argument("--tunnels", type=int, default=500)
    args = ap.parse_args()
    stack = bench_stack.start()
    try:
        rounds = asyncio.run(run(args, stack))
    finally:
        stack.stop()
        stack.cleanup()
    names = sorted({k.rsplit(" ", 1)[0] for r in rounds for k in r if k.endswith("rss_kib")})
    print("| process | RSS KiB per round (after round 3 → last) | growth per later round |")
    print("|---|---|---|")
    for name in names:
        series = [r[f"{name} rss_kib"] for r in rounds if f"{name} rss_kib" in r]
        later = series[3:] if len(series) > 4 else series
        per = (later[-1] - later[0]) / max(1, len(later) - 1)
        print(f"| {name} | {' '.join(str(v) for v in series)} | {per:+.0f} KiB |")


if __name__ == "__main__":
    main()
