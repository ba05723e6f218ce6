"""Peer address policy: the relay must never be a way into its own network."""

from __future__ import annotations

import pytest

from services.relay.turn.policy import PeerPolicy, Verdict, parse_networks

DENIED = [
    "127.0.0.1", "127.255.255.254", "0.0.0.0", "10.0.0.1", "172.16.0.1", "172.31.255.255",
    "192.168.1.1", "100.64.0.1", "100.127.255.255", "169.254.169.254", "169.254.0.1",
    "224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1", "192.0.0.8", "198.18.0.1",
    "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:192.168.0.1",
    "64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1",
    "::127.0.0.1", "2002:a00:1::", "2002:7f00:1::", "not-an-ip", "fe80::1%eth0",
]  # fmt: skip
ALLOWED = ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("host", DENIED)
def test_policy_denies_internal_ranges(host: str) -> None:
    policy = PeerPolicy(relay_ips=["203.0.113.1"])
    assert not policy.permits_ip(host)
    assert not policy.permits((host, 5000))


@pytest.mark.parametrize("host", ALLOWED)
def test_policy_allows_public(host: str) -> None:
    assert PeerPolicy().permits((host, 5000))


def test_policy_allow_peer_opens_range() -> None:
    policy = PeerPolicy(allow=parse_networks(["127.0.0.1/32", "10.1.0.0/16"]))
    assert policy.permits(("127.0.0.1", 9))
    assert policy.permits(("10.1.2.3", 9))
    assert policy.permits(("::ffff:127.0.0.1", 9))
    assert not policy.permits(("127.0.0.2", 9))
    assert not policy.permits(("10.2.0.1", 9))


def test_policy_own_relay_ports_only() -> None:
    policy = PeerPolicy(relay_ips=["127.0.0.1"], relay_ports=(40000, 40010))
    assert policy.verdict("127.0.0.1") is Verdict.OWN
    assert policy.permits_ip("127.0.0.1")
    assert policy.permits(("127.0.0.1", 40005))
    assert not policy.permits(("127.0.0.1", 22))
    assert not policy.permits(("127.0.0.2", 40005))
    assert policy.permits(("::ffff:127.0.0.1", 40000))


def test_parse_networks_bad_cidr() -> None:
    with pytest.raises(ValueError, match="not a CIDR: 'nope'"):
        parse_networks(["nope"])
