"""Benchmark: beacons/s through ingest → JetStream → aggregate, with latency and lag.

Starts its own NATS (JetStream) and Redis, `--replicas` `parley metrics` processes (each
ingests and runs the aggregator on the shared durable consumer), then drives them with
`--connections` keep-alive HTTP/1.1 connections from a minimal asyncio client (so the load
generator costs little CPU) for `--seconds`. Prints one JSON line and a summary:
accepted beacons/s, p50/p99 ingest latency (request sent → 204, i.e. after JetStream's
ack), aggregation lag p50/p99 (204 → folded, sampled every 0.25 s) and the catch-up time
(last 204 → every accepted beacon folded). CPU seconds are read per process from /proc.

    .venv/bin/python -m bench.metrics.run --seconds 20 --replicas 2 --connections 64
    .venv/bin/python -m bench.metrics.run --seconds 20 --replicas 2 --rate 2000  # set rate
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import redis

from services.common.infra import NatsServer, RedisServer, free_port

UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/126.0.0.0 Safari/537.36")
CANDIDATES = ("host", "srflx", "relay")


@dataclass
class Tally:
    """What the load generator observed."""

    accepted: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    last_ack: float = 0.0


def _request(host: str, port: int, i: int) -> bytes:
    body = json.dumps({
        "v": 1, "nonce": secrets.token_urlsafe(16), "event": "session-end",
        "local_candidate": CANDIDATES[i % 3], "remote_candidate": "srflx", "protocol": "udp",
        "mute_toggles": "1-2" if i % 4 == 0 else "0", "duration": "5-15m", "peers": "2",
    }, separators=(",", ":")).encode()
    head = (f"POST /beacon HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: {UA}\r\n"
            f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n"
            f"X-Forwarded-For: 198.51.100.{i % 250}\r\n\r\n")
    return head.encode() + body


async def _connection(host: str, port: int, deadline: float, tally: Tally, start: int,
                      interval: float = 0.0) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = start
    next_at = time.perf_counter()
    try:
        while time.perf_counter() < deadline:
            if interval:
                next_at += interval
                delay = next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            req = _request(host, port, i)
            i += 1
            t0 = time.perf_counter()
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if m and int(m[1]):
                await reader.readexactly(int(m[1]))
            t1 = time.perf_counter()
            if status == 204:
                tally.accepted += 1
                tally.latencies.append(t1 - t0)
                tally.last_ack = t1
            else:
                tally.refused[status] = tally.refused.get(status, 0) + 1
    finally:
        writer.close()


def _folded(r: redis.Redis) -> int:
    total = 0
    for key in r.scan_iter("parley:metrics:day:*"):
        total += sum(int(v) for v in r.hvals(key))
    return total


def _sample(redis_url: str, tally: Tally, samples: list[tuple[float, int, int]],
            stop: threading.Event) -> None:
    """Every 0.25 s: (time, beacons acknowledged so far, beacons folded so far)."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    while not stop.is_set():
        acked = tally.accepted
        samples.append((time.perf_counter(), acked, _folded(r)))
        stop.wait(0.25)


def _lags(samples: list[tuple[float, int, int]]) -> list[float]:
    """For each sample, how long until the aggregate held what had been acknowledged then
    (end-to-end aggregation lag: 204 → folded, at 0.25 s resolution)."""
    lags = []
    for t, acked, _ in samples:
        if acked == 0:
            continue
        done = next((t2 for t2, _, folded in samples if t2 >= t and folded >= acked), None)
        if done is not None:
            lags.append(done - t)
    return lags


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"metrics exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("metrics not ready")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--separate-aggregator", action="store_true",
                    help="run the aggregator as its own process, not in the ingest replicas")
    ap.add_argument("--rate", type=float, default=0.0,
                    help="offered beacons/s in total (0: as fast as the service answers)")
    args = ap.parse_args()

    nats_srv, redis_srv = NatsServer().start(), RedisServer().start()
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        env = {**os.environ, "PARLEY_NATS_URL": nats_srv.url, "PARLEY_REDIS_URL": redis_srv.url,
               "PARLEY_METRICS_RATE": "1000000", "PARLEY_METRICS_BURST": "1000000",
               "PARLEY_TRUSTED_PROXIES": "127.0.0.1/32", "PARLEY_LOG_LEVEL": "warning",
               "PARLEY_METRICS_BATCH": "512"}
        if args.separate_aggregator:
            env["PARLEY_METRICS_AGGREGATE"] = "false"
            agg_log = Path(tempfile.mkstemp(prefix="bench-metrics-agg-", suffix=".log")[1])
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "services", "metrics", "aggregate"],
                env={**env, "PARLEY_METRICS_AGGREGATE": "true"}, stdout=agg_log.open("wb"),
                stderr=subprocess.STDOUT))
        for _ in range(args.replicas):
            port = free_port()
            log = Path(tempfile.mkstemp(prefix="bench-metrics-", suffix=".log")[1])
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "services", "metrics", "--host", "127.0.0.1",
                 "--port", str(port)], env=env, stdout=log.open("wb"),
                stderr=subprocess.STDOUT))
            urls.append(f"http://127.0.0.1:{port}")
            _wait_ready(urls[-1], procs[-1], log)
        ports = [int(u.rsplit(":", 1)[1]) for u in urls]

        tally = Tally()
        pids = {"metrics": [p.pid for p in procs],
                "nats": [nats_srv.proc.pid] if nats_srv.proc else [],
                "redis": [redis_srv.proc.pid] if redis_srv.proc else [],
                "loadgen": [os.getpid()]}
        cpu0 = {k: sum(_cpu_seconds(p) for p in v) for k, v in pids.items()}

        async def drive() -> float:
            t0 = time.perf_counter()
            deadline = t0 + args.seconds
            await asyncio.gather(*(
                _connection("127.0.0.1", ports[c % len(ports)], deadline, tally, c * 10_000_000,
                            args.connections / args.rate if args.rate else 0.0)
                for c in range(args.connections)))
            return time.perf_counter() - t0

        samples: list[tuple[float, int, int]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=_sample, args=(redis_srv.url, tally, samples, stop))
        sampler.start()
        elapsed = asyncio.run(drive())
        r = redis.Redis.from_url(redis_srv.url, decode_responses=True)
        folded = _folded(r)
        while folded < tally.accepted and time.perf_counter() - tally.last_ack < 120:
            time.sleep(0.05)
            folded = _folded(r)
        catch_up = max(0.0, time.perf_counter() - tally.last_ack)
        time.sleep(0.3)
        stop.set()
        sampler.join()
        cpu = {k: round(sum(_cpu_seconds(p) for p in v) - cpu0[k], 1) for k, v in pids.items()}
        lat = sorted(tally.latencies)
        lags = sorted(_lags(samples))
        lag50 = round(statistics.median(lags), 2) if lags else None
        lag99 = round(lags[int(0.99 * (len(lags) - 1))], 2) if lags else None
        result = {
            "seconds": round(elapsed, 1), "replicas": args.replicas,
            "connections": args.connections, "offered_rate": args.rate or "max",
            "cpus": os.cpu_count(),
            "accepted": tally.accepted, "refused": tally.refused,
            "beacons_per_s": round(tally.accepted / elapsed),
            "ingest_p50_ms": round(1e3 * statistics.median(lat), 2) if lat else None,
            "ingest_p99_ms": round(1e3 * lat[int(0.99 * (len(lat) - 1))], 2) if lat else None,
            "aggregation_lag_p50_s": lag50, "aggregation_lag_p99_s": lag99,
            "catch_up_s": round(catch_up, 2), "folded": folded,
            "exactly_once": folded == tally.accepted,
            "cpu_seconds": cpu,
            "cpu_ms_per_beacon": round(1e3 * sum(cpu.values()) / max(1, tally.accepted), 3),
            "projected_beacons_per_s_2_idle_cores": round(
                2 * tally.accepted / max(1e-9, sum(cpu.values()))),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(result))
        print(f"{result['beacons_per_s']} beacons/s accepted ({args.replicas} replicas, "
              f"{args.connections} connections), ingest p50 {result['ingest_p50_ms']} ms "
              f"p99 {result['ingest_p99_ms']} ms, aggregation lag p50 {lag50} s p99 "
              f"{lag99} s, caught up {result['catch_up_s']} s after the last 204, "
              f"folded {folded}/{tally.accepted}; {result['cpu_ms_per_beacon']} ms CPU per "
              f"beacon in all processes (projected {result['projected_beacons_per_s_2_idle_cores']}"
              f"/s on 2 idle cores; load average {result['load_average_1m']})")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        redis_srv.stop()
        nats_srv.stop()


if __name__ == "__main__":
    main()
