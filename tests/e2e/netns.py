"""A second host for browser tests: a network namespace on a veth pair made by the test.

The namespace has its own address; this machine's end of the pair has another, from a
10.231.N.0/30 that exists only between the two, so a browser run inside the namespace
(`ip netns exec`) reaches the stack exactly as a machine on the LAN would, and no traffic
leaves the pair. Needs root and iproute2.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class NetnsUnavailable(RuntimeError):
    """The namespace cannot be made here; the message says why (tests skip with it)."""


@dataclass(frozen=True)
class Netns:
    """A namespace, and the addresses at both ends of its veth pair."""

    name: str
    host_ip: str  # this machine's end: the stack is opened at this address
    ns_ip: str  # the namespace's own address

    def wrapper(self, folder: Path, program: str) -> Path:
        """An executable that runs `program` inside the namespace (for playwright's
        `executable_path`: it talks to the browser over pipes, which cross namespaces)."""
        path = folder / f"{Path(program).name}-in-{self.name}"
        path.write_text(f'#!/bin/sh\nexec ip netns exec {self.name} {program} "$@"\n')
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def _used_subnets() -> set[str]:
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True,
                         check=False).stdout
    return {w.split("/")[0].rsplit(".", 1)[0] for w in out.split() if w.startswith("10.231.")}


@contextlib.contextmanager
def network_namespace() -> Iterator[Netns]:
    """Make the namespace and its veth pair; remove both afterwards."""
    if os.geteuid() != 0:
        raise NetnsUnavailable("needs root to make a network namespace (ip netns add)")
    if shutil.which("ip") is None:
        raise NetnsUnavailable("the `ip` command (iproute2) is not installed")
    tag = os.getpid() % 100000
    used = _used_subnets()
    subnet = next((f"10.231.{n}" for n in [*range(tag % 250, 250), *range(0, tag % 250)]
                   if f"10.231.{n}" not in used), None)
    if subnet is None:
        raise NetnsUnavailable("no free 10.231.N.0/30 subnet")
    name, host_if, ns_if = f"parley{tag}", f"plh{tag}", f"pln{tag}"
    ns = Netns(name, f"{subnet}.1", f"{subnet}.2")
    try:
        _ip("netns", "add", name)
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", name)
        _ip("addr", "add", f"{ns.host_ip}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", name, "addr", "add", f"{ns.ns_ip}/30", "dev", ns_if)
        _ip("-n", name, "link", "set", ns_if, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield ns
    finally:
        for args in (("link", "del", host_if), ("netns", "del", name)):
            with contextlib.suppress(NetnsUnavailable):
                _ip(*args)
