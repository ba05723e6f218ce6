"""How often two clients of one call land in the same worker (so in-process delivery applies).

Starts `parley relay` with `--workers N`, allocates `--clients` UDP clients from fresh
source ports, as browsers do, reads each allocation's worker from its relayed port (the
workers' port slices are disjoint) and prints the share of client pairs in one worker.
With SO_REUSEPORT's 4-tuple hash that share is about 1/N for a pair.

`--worker-ports` also gives the relay `--worker-port-base` and makes `--rooms` random
rooms of 2-6 members; every member allocates twice: once on the shared port (the kernel's
4-tuple hash decides its worker) and once on the room's worker port, chosen exactly as
rooms chooses it (`services.rooms.relays.worker_port_for` on the room's keyed hash). It
prints, for both, the share of same-room member pairs that share a worker.

    .venv/bin/python -m bench.relay.colocation --workers 2 --clients 60
    .venv/bin/python -m bench.relay.colocation --workers 2 --worker-ports --rooms 20
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import secrets
import socket

from services.common.hashing import room_key
from services.common.messages import RelayHeartbeat
from services.relay.worker import worker_ports
from services.rooms.relays import worker_port_for

from .run import SECRET, free_port, start_parley, stop, wait_udp
from .webrtc_load import TurnClient, close

RELAYED = (30000, 31999)  # start_parley's --ports


def worker_of(client: TurnClient, workers: int) -> int:
    """The worker that holds `client`'s allocation (from its relayed port's slice)."""
    slices = [worker_ports(*RELAYED, i, workers) for i in range(workers)]
    return next(i for i, (lo, hi) in enumerate(slices) if lo <= client.relayed[1] <= hi)


def share_together(groups: list[list[int]]) -> float:
    """The share of member pairs, within each group, that are in one worker."""
    pairs = [p for g in groups for p in itertools.combinations(g, 2)]
    return sum(1 for a, b in pairs if a == b) / len(pairs)


def _free_run(count: int) -> int:
    """A base port with `count` free UDP+TCP ports from it, outside the relayed range."""
    for _ in range(100):
        base = free_port()
        ports = range(base, base + count)
        if ports[-1] > 65535 or not (ports[-1] < RELAYED[0] or base > RELAYED[1]):
            continue
        try:
            for port in ports:
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    with socket.socket(socket.AF_INET, kind) as s:
                        s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no run of free ports")


def chance(workers: int, count: int) -> None:
    """Clients on the shared port only: the kernel's spread."""
    port = free_port()
    proc = start_parley(port, workers)
    clients: list[TurnClient] = []
    try:
        wait_udp(port)
        for _ in range(count):
            client = TurnClient(("127.0.0.1", port), SECRET)
            client.allocate()
            clients.append(client)
        where = [worker_of(c, workers) for c in clients]
        counts = [where.count(i) for i in range(workers)]
        print(f"workers={workers} clients per worker {counts}: "
              f"{100 * share_together([where]):.1f} % of client pairs share a worker "
              f"(1/N = {100 / workers:.1f} %)")  # fmt: skip
    finally:
        close(clients)
        stop(proc)


def rooms(workers: int, count: int, seed: int) -> None:
    """Random rooms, each member on the shared port and on the room's worker port."""
    rng = random.Random(seed)
    port, base = free_port(), _free_run(workers)
    os.environ["PARLEY_RELAY_WORKER_PORT_BASE"] = str(base)  # start_parley passes environ on
    try:
        proc = start_parley(port, workers)
    finally:
        del os.environ["PARLEY_RELAY_WORKER_PORT_BASE"]
    heartbeat = RelayHeartbeat(relay_id="bench", public_host="127.0.0.1", sent_at=0,
                               worker_ports=list(range(base, base + workers)))  # fmt: skip
    key = secrets.token_urlsafe(32)
    clients: list[TurnClient] = []
    shared: list[list[int]] = []
    steered: list[list[int]] = []
    try:
        wait_udp(port)
        wait_udp(base)
        for _ in range(count):
            name = f"{rng.randrange(16**8):08x}-{rng.randrange(10**6):06d}"
            room_port = worker_port_for(heartbeat, room_key(key, name))
            assert room_port is not None
            members = rng.randint(2, 6)
            for target, groups in ((port, shared), (room_port, steered)):
                group = []
                for _ in range(members):
                    client = TurnClient(("127.0.0.1", target), SECRET)
                    client.allocate()
                    clients.append(client)
                    group.append(worker_of(client, workers))
                groups.append(group)
        rooms_per_worker = [sum(1 for g in steered if g[0] == i) for i in range(workers)]
        members = sum(len(g) for g in steered)
        print(f"workers={workers}, {count} rooms, {members} members "
              f"(rooms per worker {rooms_per_worker}):")  # fmt: skip
        print(f"  shared port (SO_REUSEPORT 4-tuple hash): {100 * share_together(shared):.1f} % "
              f"of same-room pairs share a worker (1/N = {100 / workers:.1f} %)")
        print(f"  worker ports (rooms' choice): {100 * share_together(steered):.1f} % "
              "of same-room pairs share a worker")  # fmt: skip
    finally:
        close(clients)
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=60)
    parser.add_argument("--worker-ports", action="store_true",
                        help="rooms of 2-6 on the shared port and on their worker port")
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.worker_ports:
        rooms(args.workers, args.rooms, args.seed)
    else:
        chance(args.workers, args.clients)


if __name__ == "__main__":
    main()
