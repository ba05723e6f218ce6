"""Relay benchmark: the same load through `parley relay` and coturn, CPU per relayed packet.

Load: coturn's `turnutils_uclient` (channel mode, UDP) with `-m` clients each sending
`-n` messages every `-z` ms to coturn's C echo peer `turnutils_peer`; every message is
relayed twice (client -> peer, peer -> client). Server CPU is utime+stime from
/proc/<pid>/stat (all threads; for parley the supervisor plus its worker processes),
sampled around the load. Loopback only. Not a test: run it by hand.

    .venv/bin/python -m bench.relay.run               # standard: -y, one worker, 3 rounds
    .venv/bin/python -m bench.relay.run --variants parley,parley-kernel,coturn
    .venv/bin/python -m bench.relay.run --peer --workers 1,2  # through the echo peer
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.common.infra import free_port as common_free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "bench-secret"
TICKS = os.sysconf("SC_CLK_TCK")
LOSS = re.compile(r"Total lost packets (\d+) \(([\d.]+)%\), total send dropped (\d+)")
RECEIVED = re.compile(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$", re.M)


def free_port() -> int:
    """A port free for UDP and TCP on 127.0.0.1, with room for worker ports after it, and
    outside the servers' relayed ranges (30000-33999)."""
    while True:
        port = common_free_port(udp_too=True)
        if not 30000 - 64 <= port <= 33999:
            return port


def cpu_seconds(pid: int) -> float:
    """utime+stime of `pid` and, recursively, its live children."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICKS
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


@dataclass
class Result:
    """One server under one load."""

    name: str
    relayed: int
    lost: int
    cpu_s: float

    @property
    def us_per_packet(self) -> float:
        return self.cpu_s * 1e6 / max(self.relayed, 1)


PARLEY_VARIANTS: dict[str, dict[str, str]] = {
    "parley": {},
    "parley-kernel": {"PARLEY_RELAY_LOCAL_DELIVERY": "false"},
    "parley-py": {"PARLEY_RELAY_FASTPATH": "off"},
    # UDP GSO on the compiled path (issue 12, lever 3; off by default)
    "parley-gso": {"PARLEY_RELAY_GSO": "on"},
    "parley-py-kernel": {"PARLEY_RELAY_FASTPATH": "off", "PARLEY_RELAY_LOCAL_DELIVERY": "false"},
    # worker ports (--worker-port-base): each load generator on one worker's own port, as
    # rooms sends every member of a room to one worker
    "parley-wp": {},
}


#: CPUs the servers and the load generators may use (--server-cpus, --load-cpus); None: any.
PINNING: dict[str, set[int] | None] = {"server": None, "load": None}


def pinned(role: str) -> Callable[[], None] | None:
    """A preexec_fn that confines the child (and what it forks) to the role's CPUs."""
    cpus = PINNING[role]
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def worker_ports_of(port: int, workers: int) -> list[int]:
    """parley's per-worker listening ports in this bench (`--worker-port-base`)."""
    return [port + 1 + k for k in range(workers)]


def start_parley(port: int, workers: int, variant: str = "parley") -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_RELAY_")}
    env.update(PARLEY_VARIANTS[variant])  # `parley` is the defaults, whatever the shell says
    extra = []
    if variant.endswith("-wp"):
        extra = ["--worker-port-base", str(port + 1)]
    return subprocess.Popen(
        [sys.executable, "-m", "services.relay", "--listen", f"127.0.0.1:{port}",
         "--relay-ip", "127.0.0.1", "--ports", "30000-31999", "--secret", SECRET,
         "--workers", str(workers), "--allow-peer", "127.0.0.1/32", "--rfc5766-channels",
         "--bandwidth", "0", "--user-quota", "10000", "--request-rate", "0", "--http-port", "0",
         "--log-level", "warning", *extra],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=pinned("server"),
    )  # fmt: skip


def start_coturn(port: int, workers: int, variant: str = "coturn") -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["turnserver", "-n", "--no-cli", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
         "--listening-port", str(port), "--min-port", "32000", "--max-port", "33999",
         "--use-auth-secret", "--static-auth-secret", SECRET, "--realm", "parley",
         "--allow-loopback-peers", "--no-tls", "--no-dtls", "--relay-threads", str(workers),
         "--no-stdout-log", "--log-file", "/dev/null", "--simple-log", "--no-software-attribute"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=pinned("server"),
    )  # fmt: skip


def wait_udp(port: int) -> None:
    """Wait until something answers a STUN Binding request on `port`."""
    request = bytes.fromhex("000100002112a442") + os.urandom(12)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        for _ in range(100):
            s.sendto(request, ("127.0.0.1", port))
            try:
                s.recv(2048)
                return
            except OSError:
                time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def load(name: str, proc: subprocess.Popen[bytes], port: int, peer: int | None, *,
         clients: int, messages: int, interval_ms: int, size: int, loaders: int = 1,
         ports: list[int] | None = None) -> Result:  # fmt: skip
    """Run uclient against `proc`: client to client (-y) when `peer` is None, else to the
    echo peer. Client to client relays each message once, through the echo peer twice.

    `loaders` uclient processes run side by side, each with its share of the clients (one
    uclient tops out near 140 000 packets/s here); loader i targets `ports[i % len]` (parley's
    worker ports), else `port`.
    """
    targets = ports or [port]
    for p in set(targets):
        wait_udp(p)
    time.sleep(0.5)
    before = cpu_seconds(proc.pid)
    target = ["-y"] if peer is None else ["-e", "127.0.0.1", "-r", str(peer)]
    shares = [clients // loaders + (1 if i < clients % loaders else 0) for i in range(loaders)]
    runs = [subprocess.Popen(
        ["turnutils_uclient", "-c", "-W", SECRET, "-u", "bench",
         "-p", str(targets[i % len(targets)]), *target,
         "-m", str(n), "-n", str(messages), "-l", str(size), "-z", str(interval_ms),
         "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=pinned("load"),
    ) for i, n in enumerate(shares) if n]  # fmt: skip
    texts = [r.communicate(timeout=600)[0] for r in runs]
    cpu = cpu_seconds(proc.pid) - before
    lost = relayed = 0
    for text, n in zip(texts, [n for n in shares if n], strict=True):
        match = LOSS.search(text)
        if not match:
            raise RuntimeError(f"{name}: uclient said {text[-500:]}")
        lost_here = int(match.group(1)) + int(match.group(3))
        lost += lost_here
        counts = RECEIVED.findall(text)
        if peer is None:
            relayed += int(counts[-1][1]) if counts else n * messages - lost_here
        else:
            relayed += 2 * (n * messages - lost_here)
    return Result(name, relayed, lost, cpu)


BLAST = re.compile(r"sent (\d+) received (\d+) seconds ([\d.]+) late (\d+) dropped (\d+)")


def blaster_binary() -> Path:
    """bench/relay/blaster.c, compiled into build/ when missing or older than its source."""
    source = ROOT / "bench" / "relay" / "blaster.c"
    binary = ROOT / "build" / "blaster"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        binary.parent.mkdir(exist_ok=True)
        subprocess.run(["gcc", "-O2", "-o", str(binary), str(source)], check=True)
    return binary


@dataclass
class Blast(Result):
    """A blaster run: also the rate it achieved and whether it kept its pace."""

    sent: int = 0
    seconds: float = 0.0
    late_ticks: int = 0

    @property
    def achieved(self) -> float:
        return self.sent / max(self.seconds, 1e-9)


def blast(name: str, proc: subprocess.Popen[bytes], port: int, *, rate: int, seconds: float,
          size: int, loaders: int, ports: list[int] | None = None,
          burst: int = 1) -> Blast:  # fmt: skip
    """The paced C load (blaster.c): `rate` relayed packets/s from clients sending 200/s
    each, in pairs (each bound to its partner's relayed address), split over `loaders`
    processes; loader i's clients on `ports[i % len]` (parley's worker ports), else `port`.
    `burst` > 1: each client sends `burst` packets back to back when they are due (a uniform
    flood, what UDP GSO coalesces)."""
    from .webrtc_load import close, connect_pairs

    targets = ports or [port]
    for p in set(targets):
        wait_udp(p)
    pairs = max(1, round(rate / 400))
    per_loader = [pairs // loaders + (1 if i < pairs % loaders else 0) for i in range(loaders)]
    groups = [connect_pairs(("127.0.0.1", targets[i % len(targets)]), SECRET, n)
              for i, n in enumerate(per_loader) if n]  # fmt: skip
    try:
        for group in groups:
            for c in group:
                c.sock.connect(c.server)
        binary = str(blaster_binary())
        total = sum(len(g) for g in groups)
        before = cpu_seconds(proc.pid)
        runs = [subprocess.Popen(
            [binary, "--burst", str(burst), str(rate * len(g) / total), str(seconds), str(size),
             *(str(c.sock.fileno()) for c in g)],
            pass_fds=[c.sock.fileno() for c in g], stdout=subprocess.PIPE, text=True,
            preexec_fn=pinned("load"),
        ) for g in groups]  # fmt: skip
        outs = [r.communicate(timeout=seconds + 60)[0] for r in runs]
        cpu = cpu_seconds(proc.pid) - before
    finally:
        for group in groups:
            close(group)
    sent = received = late = dropped = 0
    took = 0.0
    for out in outs:
        m = BLAST.search(out)
        if not m:
            raise RuntimeError(f"{name}: blaster said {out[-300:]}")
        sent += int(m[1]) + int(m[5])
        received += int(m[2])
        took = max(took, float(m[3]))
        late += int(m[4])
        dropped += int(m[5])
    return Blast(name, received, sent - received, cpu, sent=sent, seconds=took,
                 late_ticks=late)


def stop(proc: subprocess.Popen[bytes]) -> None:
    for _ in range(2):  # parley: the second SIGTERM skips the drain
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def webrtc(name: str, proc: subprocess.Popen[bytes], port: int, *, rate: int,
           seconds: float) -> Result:  # fmt: skip
    """The WebRTC-shaped load (bench/relay/webrtc_load.py): ~185 packets/s per client."""
    from .webrtc_load import close, connect_pairs, run_load

    wait_udp(port)
    pairs = max(1, round(rate / (2 * 185)))
    clients = connect_pairs(("127.0.0.1", port), SECRET, pairs)
    try:
        before = cpu_seconds(proc.pid)
        result = run_load(clients, seconds)
        cpu = cpu_seconds(proc.pid) - before
    finally:
        close(clients)
    return Result(name, result.received, result.sent - result.received, cpu)


def run_one(variant: str, workers: int, peer: int | None, *, shape: str = "uclient",
            **load_args: int) -> Result:  # fmt: skip
    """Start one server variant, load it, stop it."""
    port = free_port()
    starter = start_coturn if variant == "coturn" else start_parley
    proc = starter(port, workers, variant)
    try:
        ports = worker_ports_of(port, workers) if variant.endswith("-wp") else None
        if shape == "webrtc":
            return webrtc(variant, proc, port, rate=load_args["rate"],
                          seconds=load_args["seconds"])  # fmt: skip
        if shape == "blaster":
            return blast(variant, proc, port, rate=load_args["rate"],
                         seconds=load_args["seconds"], size=load_args["size"],
                         loaders=load_args.get("loaders", 1), ports=ports,
                         burst=load_args.get("burst", 1))  # fmt: skip
        load_args = {k: v for k, v in load_args.items() if k not in ("rate", "seconds", "burst")}
        return load(variant, proc, port, peer, ports=ports, **load_args)
    finally:
        stop(proc)


def max_throughput(variants: list[str], workers: int, rates: list[int], seconds: float,
                   size: int, loaders: int = 1, burst: int = 1) -> None:  # fmt: skip
    """Every worker: the highest client-to-client rate each server relays at < 0.1 % loss.

    The paced C load (blaster.c), clients of 200 packets/s each. Interleaved: at each rate
    every server that has not failed yet runs once. A step counts only when the load kept
    its pace (achieved >= 97 % of the rate); when it did not, the load generator is the
    limit and the step says so instead of passing or failing the server.
    """
    print(f"\nmax throughput, workers={workers} (coturn: as many relay threads), "
          f"blaster x{loaders}, {size} B, bursts of {burst}, {seconds:.0f} s per step, "
          f"server CPUs {sorted(PINNING['server'] or []) or 'any'}, "
          f"load CPUs {sorted(PINNING['load'] or []) or 'any'}")  # fmt: skip
    best: dict[str, float] = dict.fromkeys(variants, 0.0)
    failed: set[str] = set()
    limited: set[str] = set()
    for rate in rates:
        for v in variants:
            if v in failed or v in limited:
                continue
            r = run_one(v, workers, None, shape="blaster", size=size, rate=rate,
                        seconds=int(seconds), loaders=loaders, burst=burst)  # fmt: skip
            assert isinstance(r, Blast)
            loss = r.lost / max(r.sent, 1)
            kept = r.achieved >= 0.97 * rate
            verdict = "ok" if loss < 0.001 and kept else (
                "LOST" if kept else "load generator behind")
            print(f"{v:16s} {rate:7d}/s  achieved {r.achieved:9.0f}/s  relayed {r.relayed:8d}  "
                  f"loss {100 * loss:6.3f} %  {r.us_per_packet:6.2f} µs/pkt  "
                  f"late ticks {r.late_ticks:5d}  {verdict}")  # fmt: skip
            if loss < 0.001 and kept:
                best[v] = r.achieved
            elif kept:
                failed.add(v)
            else:
                limited.add(v)
        if len(failed | limited) == len(variants):
            break
    for v, achieved in best.items():
        ceiling = ("its ceiling" if v in failed else "not its ceiling: the load generator fell "
                   "behind" if v in limited else "not its ceiling: the highest rate offered")
        print(f"{v}: {achieved:.0f} packets/s at < 0.1 % loss ({ceiling})")
    if best.get("coturn"):
        for v in variants:
            if v != "coturn":
                bound = "" if v in failed else " or more"
                print(f"{v}/coturn packets/s: {best[v] / best['coturn']:.2f}x{bound}")


def main() -> None:
    """Interleaved rounds of every variant per worker count; per-round and median ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=10000, help="relayed packets/s target")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the load")
    parser.add_argument("--size", type=int, default=160, help="payload bytes (audio-sized)")
    parser.add_argument("--workers", default="1", help="comma-separated worker counts")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--peer", action="store_true",
                        help="through coturn's echo peer instead of client to client (-y)")
    parser.add_argument("--shape", choices=["uclient", "webrtc"], default="uclient",
                        help="uclient: fixed-size packets; webrtc: audio+video packet sizes")
    parser.add_argument("--max", default="", metavar="RATES",
                        help="max-throughput run instead: comma-separated packets/s steps")
    parser.add_argument("--loaders", type=int, default=1,
                        help="load generator processes side by side (max-throughput run)")
    parser.add_argument("--burst", type=int, default=1, metavar="K",
                        help="--max: each client sends K packets back to back when due (a "
                        "uniform flood, what UDP GSO coalesces); 1 = paced")
    parser.add_argument("--server-cpus", default="", metavar="CPUS",
                        help="confine the servers to these CPUs (e.g. 1), see --load-cpus")
    parser.add_argument("--load-cpus", default="", metavar="CPUS",
                        help="confine the load generators to these CPUs (e.g. 0)")
    parser.add_argument("--variants", default="parley,coturn",
                        help=f"servers, of coturn,{','.join(PARLEY_VARIANTS)}")  # fmt: skip
    args = parser.parse_args()
    for tool in ("turnserver", "turnutils_uclient", "turnutils_peer"):
        if shutil.which(tool) is None:
            sys.exit(f"error: {tool} not found (apt install coturn)")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for role, text in (("server", args.server_cpus), ("load", args.load_cpus)):
        PINNING[role] = {int(c) for c in text.split(",") if c.strip()} or None
    interval_ms = 10
    per_client = 1000 / interval_ms
    hops = 2 if args.peer else 1
    clients = max(1, round(args.rate / hops / per_client))
    messages = int(args.seconds * per_client)
    peer_port = None
    peer = None
    if args.peer:
        peer_port = free_port()
        peer = subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-p", str(peer_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    rate = hops * clients * per_client
    load_args = {"clients": clients, "messages": messages, "interval_ms": interval_ms,
                 "size": args.size, "rate": args.rate, "seconds": int(args.seconds)}  # fmt: skip
    if args.max:  # client to client only
        if peer is not None:
            peer.terminate()
        for workers in [int(w) for w in args.workers.split(",")]:
            rates = [int(r) for r in args.max.split(",")]
            max_throughput(variants, workers, rates, args.seconds, args.size, args.loaders,
                           args.burst)
        return
    if args.shape == "webrtc":
        print(f"load: WebRTC-shaped (audio 20 ms + video bursts), ~{args.rate} relayed "
              f"packets/s for {args.seconds:.0f} s, {args.rounds} rounds")  # fmt: skip
    print(
        f"load: {clients} clients x {messages} msgs every {interval_ms} ms, {args.size} B, "
        f"{'via echo peer' if args.peer else 'client to client'} "
        f"-> {rate:.0f} relayed packets/s for {args.seconds:.0f} s, {args.rounds} rounds"
    )
    try:
        for workers in [int(w) for w in args.workers.split(",")]:
            print(f"\nworkers={workers}")
            print(f"{'round':5s} {'server':16s} {'relayed':>9s} {'lost':>6s} {'cpu s':>7s} "
                  f"{'µs/pkt':>8s}")  # fmt: skip
            ratios: dict[str, list[float]] = {v: [] for v in variants if v != "coturn"}
            for round_ in range(args.rounds):
                order = variants if round_ % 2 == 0 else variants[::-1]
                results = {v: run_one(v, workers, peer_port, shape=args.shape, **load_args)
                           for v in order}  # fmt: skip
                for v in variants:
                    r = results[v]
                    print(f"{round_:5d} {r.name:16s} {r.relayed:9d} {r.lost:6d} {r.cpu_s:7.2f} "
                          f"{r.us_per_packet:8.2f}")  # fmt: skip
                if "coturn" in results:
                    base = max(results["coturn"].us_per_packet, 1e-9)
                    for v in ratios:
                        ratios[v].append(results[v].us_per_packet / base)
            for v, values in ratios.items():
                if values:
                    shown = " ".join(f"{x:.2f}" for x in values)
                    print(f"{v}/coturn CPU per packet: median {statistics.median(values):.2f}x "
                          f"(rounds: {shown})")  # fmt: skip
    finally:
        if peer is not None:
            peer.terminate()


if __name__ == "__main__":
    main()
