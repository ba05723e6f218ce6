"""Relay benchmark: the same load through `parley relay` and coturn, CPU per relayed packet.

Load: coturn's `turnutils_uclient` (channel mode, UDP) with `-m` clients each sending
`-n` messages every `-z` ms to coturn's C echo peer `turnutils_peer`; every message is
relayed twice (client -> peer, peer -> client). Server CPU is utime+stime from
/proc/<pid>/stat (all threads; for parley the supervisor plus its worker processes),
sampled around the load. Loopback only. Not a test: run it by hand.

    .venv/bin/python -m bench.relay.run               # one worker and all workers
    .venv/bin/python -m bench.relay.run --rate 10000 --seconds 5
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from services.common.infra import free_port as common_free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "bench-secret"
TICKS = os.sysconf("SC_CLK_TCK")
LOSS = re.compile(r"Total lost packets (\d+) \(([\d.]+)%\), total send dropped (\d+)")


def free_port() -> int:
    """A port free for UDP and TCP on 127.0.0.1."""
    return common_free_port(udp_too=True)


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


def start_parley(port: int, workers: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.relay", "--listen", f"127.0.0.1:{port}",
         "--relay-ip", "127.0.0.1", "--ports", "30000-31999", "--secret", SECRET,
         "--workers", str(workers), "--allow-peer", "127.0.0.1/32", "--rfc5766-channels",
         "--bandwidth", "0", "--user-quota", "10000", "--request-rate", "0", "--http-port", "0",
         "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def start_coturn(port: int, workers: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["turnserver", "-n", "--no-cli", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
         "--listening-port", str(port), "--min-port", "32000", "--max-port", "33999",
         "--use-auth-secret", "--static-auth-secret", SECRET, "--realm", "parley",
         "--allow-loopback-peers", "--no-tls", "--no-dtls", "--relay-threads", str(workers),
         "--no-stdout-log", "--log-file", "/dev/null", "--simple-log", "--no-software-attribute"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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


def load(name: str, proc: subprocess.Popen[bytes], port: int, peer: int, *, clients: int,
         messages: int, interval_ms: int, size: int) -> Result:  # fmt: skip
    wait_udp(port)
    time.sleep(0.5)
    before = cpu_seconds(proc.pid)
    out = subprocess.run(
        ["turnutils_uclient", "-c", "-W", SECRET, "-u", "bench", "-p", str(port),
         "-e", "127.0.0.1", "-r", str(peer), "-m", str(clients), "-n", str(messages),
         "-l", str(size), "-z", str(interval_ms), "127.0.0.1"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    cpu = cpu_seconds(proc.pid) - before
    match = LOSS.search(out.stdout + out.stderr)
    if not match:
        raise RuntimeError(f"{name}: uclient said {(out.stdout + out.stderr)[-500:]}")
    lost = int(match.group(1)) + int(match.group(3))
    sent = clients * messages
    return Result(name, 2 * (sent - lost), lost, cpu)


def stop(proc: subprocess.Popen[bytes]) -> None:
    for _ in range(2):  # parley: the second SIGTERM skips the drain
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    """Run both servers with one worker, then with all workers; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=10000, help="relayed packets/s target")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the load")
    parser.add_argument("--size", type=int, default=160, help="payload bytes (audio-sized)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="'all workers'")
    args = parser.parse_args()
    for tool in ("turnserver", "turnutils_uclient", "turnutils_peer"):
        if shutil.which(tool) is None:
            sys.exit(f"error: {tool} not found (apt install coturn)")
    interval_ms = 10
    per_client = 1000 / interval_ms
    clients = max(1, round(args.rate / 2 / per_client))
    messages = int(args.seconds * per_client)
    peer_port = free_port()
    peer = subprocess.Popen(["turnutils_peer", "-L", "127.0.0.1", "-p", str(peer_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    rate = 2 * clients * per_client
    print(
        f"load: {clients} clients x {messages} msgs every {interval_ms} ms, {args.size} B "
        f"-> {rate:.0f} relayed packets/s for {args.seconds:.0f} s"
    )
    try:
        for workers in sorted({1, args.workers}):
            results = []
            for name, starter in (("parley", start_parley), ("coturn", start_coturn)):
                port = free_port()
                proc = starter(port, workers)
                try:
                    result = load(
                        name, proc, port, peer_port, clients=clients, messages=messages,
                        interval_ms=interval_ms, size=args.size,
                    )  # fmt: skip
                    results.append(result)
                finally:
                    stop(proc)
            print(f"\nworkers={workers}")
            print(f"{'server':8s} {'relayed':>9s} {'lost':>6s} {'cpu s':>7s} {'µs/pkt':>8s}")
            for r in results:
                print(
                    f"{r.name:8s} {r.relayed:9d} {r.lost:6d} {r.cpu_s:7.2f} {r.us_per_packet:8.2f}"
                )
            ratio = results[0].us_per_packet / max(results[1].us_per_packet, 1e-9)
            print(f"parley/coturn CPU per packet: {ratio:.2f}x")
    finally:
        peer.terminate()


if __name__ == "__main__":
    main()
