"""How often two clients of one call land in the same worker (so in-process delivery applies).

Starts `parley relay` with `--workers N`, allocates `--clients` UDP clients from fresh
source ports, as browsers do, reads each allocation's worker from its relayed port (the
workers' port slices are disjoint) and prints the share of client pairs in one worker.
With SO_REUSEPORT's 4-tuple hash that share is about 1/N for a pair.

    .venv/bin/python -m bench.relay.colocation --workers 2 --clients 60
"""

from __future__ import annotations

import argparse
import itertools

from services.relay.worker import worker_ports

from .run import SECRET, free_port, start_parley, stop, wait_udp
from .webrtc_load import TurnClient, close


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=60)
    args = parser.parse_args()
    port = free_port()
    proc = start_parley(port, args.workers)
    clients: list[TurnClient] = []
    try:
        wait_udp(port)
        for _ in range(args.clients):
            client = TurnClient(("127.0.0.1", port), SECRET)
            client.allocate()
            clients.append(client)
        slices = [worker_ports(30000, 31999, i, args.workers) for i in range(args.workers)]
        workers = [
            next(i for i, (lo, hi) in enumerate(slices) if lo <= c.relayed[1] <= hi)
            for c in clients
        ]
        counts = [workers.count(i) for i in range(args.workers)]
        pairs = list(itertools.combinations(workers, 2))
        same = sum(1 for a, b in pairs if a == b) / len(pairs)
        print(f"workers={args.workers} clients per worker {counts}: "
              f"{100 * same:.1f} % of client pairs share a worker "
              f"(1/N = {100 / args.workers:.1f} %)")  # fmt: skip
    finally:
        close(clients)
        stop(proc)


if __name__ == "__main__":
    main()
