"""Signalling fan-out benchmark: `python -m bench.signaling [--connections N] [--duration S]`.

Starts NATS, Redis and two signalling replicas on loopback, opens N websockets spread
over both replicas in rooms of 2-6 peers (each room split across the replicas), keeps
most rooms idle (a protocol ping every 15 s per socket, as a browser does) and makes some
rooms active (every peer sends signal, media-state and chat messages at `--rate` per
second). Reports connections held, memory per connection on the replicas, messages/s and
the fan-out latency (send on one socket -> receipt on each other socket of the room,
across replicas) p50/p99, measured in this process with one clock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import resource
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect

from services.common.hashing import room_key
from services.common.infra import NatsServer, RedisServer, child_env, free_port
from services.common.roomstate import RoomState
from services.common.tokens import issue_join_token

TOKEN_KEY = "bench-token-key-0123456789abcdef0123456789"
HASH_KEY = "bench-hash-key-0123456789abcdef0123456789"
PING_INTERVAL = 15.0


@dataclass
class Stats:
    sent: int = 0
    received: int = 0
    expected: int = 0
    errors: int = 0
    closed: int = 0
    latencies: list[float] = field(default_factory=list)
    unicast: list[float] = field(default_factory=list)
    measuring: bool = False
    timeline: list[tuple[float, float]] = field(default_factory=list)
    client_lag: list[float] = field(default_factory=list)


@dataclass
class BenchPeer:
    room: int
    peer_id: str
    token: str
    url: str
    ws: ClientConnection | None = None
    others: list[str] = field(default_factory=list)


def raise_fd_limit() -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def start_replica(nats_url: str, redis_url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = child_env(PARLEY_NATS_URL=nats_url, PARLEY_REDIS_URL=redis_url,
                    PARLEY_TOKEN_KEY=TOKEN_KEY, PARLEY_HASH_KEY=HASH_KEY,
                    PARLEY_HOST="127.0.0.1", PARLEY_PORT=str(port), PARLEY_LOG_LEVEL="warning",
                    PARLEY_RATE_BURST="1000",
                    # the whole load comes from one address: no per-address socket limit
                    PARLEY_CONNECT_BURST="1000000", PARLEY_CONNECT_RATE="100000")
    log_path = os.environ.get("BENCH_REPLICA_LOG")  # to look into a replica's own logs
    out = open(f"{log_path}.{port}", "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "services.signaling"], env=env,
                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=0.5).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("replica did not become ready")


def room_sizes(total: int, rng: random.Random) -> list[int]:
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(min(rng.randint(2, 6), total - sum(sizes)))
    if sizes[-1] == 1:
        sizes[-2] -= 1
        sizes[-1] = 2
    return sizes


async def admit_all(redis_url: str, sizes: list[int], urls: list[str]) -> list[list[BenchPeer]]:
    r = aioredis.from_url(redis_url, decode_responses=True)
    state = RoomState(r)
    rooms: list[list[BenchPeer]] = []
    now = time.time()
    for i, size in enumerate(sizes):
        name = f"bench-{i}-{secrets.token_hex(3)}"
        rk = room_key(HASH_KEY, name)
        peers = []
        for j in range(size):
            pid = secrets.token_hex(6)
            peers.append(BenchPeer(i, pid, issue_join_token(
                TOKEN_KEY, room=name, room_key=rk, peer_id=pid, ttl=3600, now=now),
                urls[(i + j) % len(urls)]))
            peers[-1].token_room = name  # type: ignore[attr-defined]
        async with r.pipeline(transaction=False) as pipe:
            for p in peers:
                pipe.zadd(state.members_key(rk), {p.peer_id: now + 3600})
            await pipe.execute()
        rooms.append(peers)
    await r.aclose()
    return rooms


async def reader(peer: BenchPeer, stats: Stats) -> None:
    assert peer.ws is not None
    try:
        async for frame in peer.ws:
            now = time.perf_counter()
            msg = json.loads(frame)
            kind = msg["type"]
            if not stats.measuring:
                continue
            stats.received += 1
            if kind == "chat":
                lat = now - float(msg["text"][2:])
                stats.latencies.append(lat)
                stats.timeline.append((now, lat))
            elif kind == "signal":
                lat = now - float(msg["data"]["candidate"]["usernameFragment"])
                stats.latencies.append(lat)
                stats.unicast.append(lat)
                stats.timeline.append((now, lat))
            elif kind == "error":
                stats.errors += 1
    except Exception:
        pass
    stats.closed += 1


async def open_and_join(peer: BenchPeer, stats: Stats) -> None:
    ws = await connect(peer.url, proxy=None, compression=None, open_timeout=60,
                       ping_interval=None, max_queue=64)
    await ws.send(json.dumps({"type": "join", "token": peer.token,
                              "room": peer.token_room}))  # type: ignore[attr-defined]
    welcome = json.loads(await ws.recv())
    if welcome["type"] != "welcome":
        raise RuntimeError(f"join failed: {welcome}")
    peer.ws = ws
    asyncio.get_running_loop().create_task(reader(peer, stats))


async def pinger(peers: list[BenchPeer], stats: Stats) -> None:
    """Each joined socket sends a protocol ping every PING_INTERVAL, spread evenly.

    Runs from the start of the connection phase: a joined socket silent for 45 s is
    closed by the server (idle timeout), and setting up 10 000 sockets takes longer.
    """
    gap = PING_INTERVAL / max(1, len(peers))
    i = 0
    while True:
        start = time.perf_counter()
        for _ in range(max(1, int(0.1 / gap))):
            p = peers[i % len(peers)]
            i += 1
            if p.ws is not None:
                try:
                    await p.ws.send('{"type":"ping"}')
                    if stats.measuring:
                        stats.sent += 1
                        stats.expected += 1  # the pong
                except Exception:
                    pass
        await asyncio.sleep(max(0.0, 0.1 - (time.perf_counter() - start)))


async def talker(peer: BenchPeer, rate: float, stats: Stats, rng: random.Random) -> None:
    """An active peer: signals (60%), media-state (30%), chat (10%) at `rate`/s."""
    assert peer.ws is not None
    n_others = len(peer.others)
    while True:
        await asyncio.sleep(rng.expovariate(rate))
        roll = rng.random()
        ts = repr(time.perf_counter())
        if roll < 0.6:
            msg = {"type": "signal", "to": rng.choice(peer.others), "data": {"candidate": {
                "candidate": "candidate:842163049 1 udp 1677729535 127.0.0.1 50000 typ srflx "
                             "raddr 0.0.0.0 rport 0 generation 0 network-cost 999",
                "sdpMid": "0", "sdpMLineIndex": 0, "usernameFragment": ts}}}
            expect = 1
        elif roll < 0.9:
            msg = {"type": "media-state", "audio": rng.random() < 0.5, "video": True,
                   "screen": False}
            expect = n_others
        else:
            msg = {"type": "chat", "text": "t:" + ts}
            expect = n_others
        try:
            await peer.ws.send(json.dumps(msg))
        except Exception:
            return
        if stats.measuring:
            stats.sent += 1
            stats.expected += expect


def scrape_fanout(port: int, name: str = "fanout") -> dict[float, float]:
    """Cumulative bucket counts of one of the replica's histograms."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    out: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(f"parley_signaling_{name}_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def bucket_quantile(before: list[dict[float, float]], after: list[dict[float, float]],
                    q: float) -> float:
    """Upper bound (ms) of the bucket holding quantile q of the delta, summed over replicas."""
    les = sorted(after[0])
    delta = {le: sum(a.get(le, 0) - b.get(le, 0) for a, b in zip(after, before, strict=True))
             for le in les}
    total = delta[les[-1]]
    for le in les:
        if total and delta[le] >= q * total:
            return le * 1000
    return float("nan")


def timeline(points: list[tuple[float, float]], start: float,
             step: float) -> list[tuple[float, float]]:
    windows: dict[int, list[float]] = {}
    for t, lat in points:
        windows.setdefault(int((t - start) // step), []).append(lat)
    return [(round(1000 * pct(v, 0.5), 1), round(1000 * pct(v, 0.99), 1))
            for _, v in sorted(windows.items())]


async def lag_probe(stats: Stats) -> None:
    """How late this client's own loop runs (its latency adds to the measured one)."""
    while True:
        start = time.perf_counter()
        await asyncio.sleep(0.1)
        if stats.measuring:
            stats.client_lag.append(time.perf_counter() - start - 0.1)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    hard = raise_fd_limit()
    nats_srv, redis_srv = NatsServer().start(), RedisServer().start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ports = []
        for _ in range(2):
            proc, port = start_replica(nats_srv.url, redis_srv.url)
            procs.append(proc)
            ports.append(port)
        urls = [f"ws://127.0.0.1:{p}/ws" for p in ports]
        await asyncio.sleep(1.0)
        base_rss = [psutil.Process(p.pid).memory_info().rss for p in procs]
        client = psutil.Process()
        base_client = client.memory_info().rss

        sizes = room_sizes(args.connections, rng)
        rooms = await admit_all(redis_srv.url, sizes, urls)
        peers = [p for room in rooms for p in room]
        for room in rooms:
            for p in room:
                p.others = [o.peer_id for o in room if o is not p]
        stats = Stats()
        t0 = time.perf_counter()
        sem = asyncio.Semaphore(args.concurrency)
        failures = 0

        async def one(p: BenchPeer) -> None:
            nonlocal failures
            async with sem:
                try:
                    await open_and_join(p, stats)
                except Exception as exc:
                    failures += 1
                    if failures <= 3:
                        print(f"connect failed: {type(exc).__name__}: {exc}", file=sys.stderr)

        tasks = [asyncio.create_task(pinger(peers, stats)), asyncio.create_task(lag_probe(stats))]
        await asyncio.gather(*(one(p) for p in peers))
        setup = time.perf_counter() - t0
        held = sum(1 for p in peers if p.ws is not None)
        print(f"joined {held}/{len(peers)} sockets in {setup:.1f} s", file=sys.stderr)

        active_rooms = [r for r in rooms if all(p.ws is not None for p in r)][: args.active_rooms]
        active = [p for r in active_rooms for p in r]
        tasks += [asyncio.create_task(talker(p, args.rate, stats, rng)) for p in active]
        await asyncio.sleep(args.warmup)
        cpu0 = [psutil.Process(p.pid).cpu_times() for p in procs]
        hist0 = await asyncio.to_thread(lambda: [scrape_fanout(port) for port in ports])
        lag0 = await asyncio.to_thread(
            lambda: [scrape_fanout(port, "loop_lag") for port in ports])
        stats.measuring = True
        m0 = time.perf_counter()
        await asyncio.sleep(args.duration)
        stats.measuring = False
        elapsed = time.perf_counter() - m0
        cpu1 = [psutil.Process(p.pid).cpu_times() for p in procs]
        hist1 = await asyncio.to_thread(lambda: [scrape_fanout(port) for port in ports])
        lag1 = await asyncio.to_thread(
            lambda: [scrape_fanout(port, "loop_lag") for port in ports])
        gc_text = await asyncio.to_thread(lambda: [httpx.get(
            f"http://127.0.0.1:{port}/metrics", timeout=5).text for port in ports])
        gc_lines = [ln for t in gc_text for ln in t.splitlines()
                    if ln.startswith("parley_signaling_gc_pause_seconds_sum")
                    or ln.startswith("parley_signaling_gc_pause_seconds_count")]
        load = os.getloadavg()
        rss = [psutil.Process(p.pid).memory_info().rss for p in procs]
        still = sum(1 for p in peers if p.ws is not None and p.ws.state.name == "OPEN")
        await asyncio.sleep(1.0)  # stragglers are not counted: measuring is off
        for t in tasks:
            t.cancel()
        per_replica = [sum(1 for p in peers if p.ws is not None and p.url == u) for u in urls]
        result = {
            "connections_target": len(peers),
            "connections_held": still,
            "rooms": len(rooms),
            "active_rooms": len(active_rooms),
            "active_peers": len(active),
            "setup_seconds": round(setup, 1),
            "joins_per_second": round(held / setup, 1),
            "replica_rss_mib": [round(r / 2**20, 1) for r in rss],
            "memory_per_connection_kib": [
                round((rss[i] - base_rss[i]) / max(1, per_replica[i]) / 1024, 1)
                for i in range(2)],
            "bench_client_kib_per_connection": round(
                (client.memory_info().rss - base_client) / max(1, held) / 1024, 1),
            "replica_cpu_percent": [
                round(100 * ((c1.user + c1.system) - (c0.user + c0.system)) / elapsed, 1)
                for c0, c1 in zip(cpu0, cpu1, strict=True)],
            "messages_sent_per_second": round(stats.sent / elapsed, 1),
            "messages_received_per_second": round(stats.received / elapsed, 1),
            "delivery_ratio": round(stats.received / max(1, stats.expected), 4),
            "fanout_latency_ms": {
                "p50": round(1000 * pct(stats.latencies, 0.5), 2),
                "p99": round(1000 * pct(stats.latencies, 0.99), 2),
                "max": round(1000 * max(stats.latencies, default=float("nan")), 2),
                "samples": len(stats.latencies)},
            "unicast_signal_latency_ms": {
                "p50": round(1000 * pct(stats.unicast, 0.5), 2),
                "p99": round(1000 * pct(stats.unicast, 0.99), 2)},
            "server_fanout_ms_bucket_bound": {
                "p50": bucket_quantile(hist0, hist1, 0.5),
                "p99": bucket_quantile(hist0, hist1, 0.99)},
            "timeline_p50_p99_ms_per_5s": timeline(stats.timeline, m0, 5.0),
            "replica_loop_lag_ms_bucket_bound": {
                "p50": bucket_quantile(lag0, lag1, 0.5),
                "p99": bucket_quantile(lag0, lag1, 0.99)},
            "client_loop_lag_ms": {"p50": round(1000 * pct(stats.client_lag, 0.5), 1),
                                   "p99": round(1000 * pct(stats.client_lag, 0.99), 1)},
            "replica_gc_totals_since_start": gc_lines,
            "machine_load_average_1m": round(load[0], 2),
            "errors": stats.errors,
            "fd_limit": hard,
            "cpus": os.cpu_count(),
        }
        close_sem = asyncio.Semaphore(500)

        async def close(p: BenchPeer) -> None:
            if p.ws is not None:
                async with close_sem:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(p.ws.close(), 2)

        await asyncio.gather(*(close(p) for p in peers))
        return result
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis_srv.stop()
        nats_srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.signaling", description=__doc__)
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--active-rooms", type=int, default=250,
                    help="rooms whose peers send messages (the rest idle)")
    ap.add_argument("--rate", type=float, default=1.0,
                    help="messages per second per active peer")
    ap.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--concurrency", type=int, default=200, help="sockets opening at once")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    gc.set_threshold(50_000, 20, 10)  # as the replicas do: no full collections mid-run
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
