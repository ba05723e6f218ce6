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
    policy = PeerPolicy(relay_ips=["127.0.0.1"], relay_ports=(40000, 40010),
                        live_ports={40000, 40005})
    assert policy.verdict("127.0.0.1") is Verdict.OWN
    assert policy.permits_ip("127.0.0.1")
    assert policy.permits(("127.0.0.1", 40005))
    assert not policy.permits(("127.0.0.1", 22))
    assert not policy.permits(("127.0.0.2", 40005))
    assert policy.permits(("::ffff:127.0.0.1", 40000))


def test_policy_own_ip_only_live_relayed_ports() -> None:
    live: set[int] = {40001}
    policy = PeerPolicy(relay_ips=["127.0.0.1"], relay_ports=(40000, 40010), live_ports=live)
    assert not policy.permits(("127.0.0.1", 40002))  # in the range, but no socket there
    live.add(40002)  # the set is read at every decision (the shell shares it)
    assert policy.permits(("127.0.0.1", 40002))
    live.discard(40001)
    assert not policy.permits(("127.0.0.1", 40001))


LISTENER_HOSTS = ["192.0.2.10", "127.0.0.1", "127.0.0.53", "0.0.0.0", "::", "::1",
                  "::ffff:192.0.2.10", "::ffff:127.0.0.1", "64:ff9b::c000:20a"]


@pytest.mark.parametrize("host", LISTENER_HOSTS)
def test_policy_never_its_own_listener(host: str) -> None:
    # the listener port sits inside the relayed range and even has a "live" mark: still no
    policy = PeerPolicy(relay_ips=["192.0.2.10"], relay_ports=(3000, 4000),
                        listen_ports=[3478], live_ports={3478})
    assert not policy.permits((host, 3478))


@pytest.mark.parametrize("host", LISTENER_HOSTS)
def test_policy_allow_peer_never_opens_its_listener(host: str) -> None:
    policy = PeerPolicy(relay_ips=["192.0.2.10"], listen_ports=[3478, 443],
                        allow=parse_networks(["0.0.0.0/0", "::/0"]))
    assert not policy.permits((host, 3478))
    assert not policy.permits((host, 443))
    assert policy.permits((host, 3479))  # the operator opened everything else on purpose


def test_policy_listener_port_elsewhere_allowed() -> None:
    policy = PeerPolicy(relay_ips=["192.0.2.10"], listen_ports=[3478])
    assert policy.permits(("8.8.8.8", 3478))  # another host's TURN server is just a peer


def test_parse_networks_bad_cidr() -> None:
    with pytest.raises(ValueError, match="not a CIDR: 'nope'"):
        parse_networks(["nope"])
