"""`parley dev`'s plan for the relay: listener outside the relayed range, side port on loopback.

Issue 15, items 8 and 9: the dev relay's listening port fell inside its relayed port range
(a TURN loop), and its health/metrics port listened on 0.0.0.0.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from services.devstack import RELAY_PORTS, DevStack, relayed_range


def _relay_argv(**stack: Any) -> list[str]:
    infra: Any = SimpleNamespace(url="nats://127.0.0.1:1")
    redis: Any = SimpleNamespace(url="redis://127.0.0.1:2/0")
    children = DevStack(**stack).plan(infra, redis)
    (relay,) = [c for c in children if c.name == "relay"]
    return relay.argv


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_devstack_relay_listener_outside_relayed_range() -> None:
    for _ in range(20):  # free ports come from the kernel's ephemeral range, which overlaps
        argv = _relay_argv()
        low, high = (int(p) for p in _option(argv, "--ports").split("-"))
        assert (low, high) == RELAY_PORTS
        listen_port = int(_option(argv, "--listen").rsplit(":", 1)[1])
        assert not low <= listen_port <= high


def test_devstack_relay_side_port_on_loopback() -> None:
    assert _option(_relay_argv(), "--http-host") == "127.0.0.1"
    # also when the relay itself listens on every interface
    assert _option(_relay_argv(host="0.0.0.0"), "--http-host") == "127.0.0.1"


def test_devstack_chosen_relay_port_inside_range_moves_the_range() -> None:
    argv = _relay_argv(relay_port=50000)
    assert _option(argv, "--ports") == "50001-65535"
    assert relayed_range([3478]) == RELAY_PORTS
    assert relayed_range([65000]) == (49152, 64999)


def test_devstack_external_turn_replaces_the_relay_and_only_rooms_gets_it(
        monkeypatch: Any) -> None:
    monkeypatch.setenv("PARLEY_EXTERNAL_TURN_SECRET", "coturn-secret")
    infra: Any = SimpleNamespace(url="nats://127.0.0.1:1")
    redis: Any = SimpleNamespace(url="redis://127.0.0.1:2/0")
    url = "turn:turn.example.org:3478?transport=udp"
    children = DevStack(external_turn=url, external_turn_secret="coturn-secret").plan(
        infra, redis)
    assert "relay" not in [c.name for c in children]
    for child in children:
        if child.name == "rooms":
            assert child.env["PARLEY_TURN_SERVERS"] == f'["{url}"]'
            assert child.env["PARLEY_TURN_SERVER_SECRETS"] == '["coturn-secret"]'
        else:
            assert "coturn-secret" not in child.env.values(), child.name
        assert "PARLEY_EXTERNAL_TURN_SECRET" not in child.env, child.name


def test_devstack_relay_exports_traces_as_the_stack_does(monkeypatch: Any) -> None:
    monkeypatch.setenv("PARLEY_OTEL_EXPORTER", "otlp")
    infra: Any = SimpleNamespace(url="nats://127.0.0.1:1")
    redis: Any = SimpleNamespace(url="redis://127.0.0.1:2/0")
    (relay,) = [c for c in DevStack().plan(infra, redis) if c.name == "relay"]
    assert relay.env["PARLEY_RELAY_OTEL_EXPORTER"] == "otlp"


def test_dev_external_turn_refuses_a_bad_url_or_no_secret(monkeypatch: Any) -> None:
    from typer.testing import CliRunner

    from services.cli import app

    monkeypatch.delenv("PARLEY_EXTERNAL_TURN_SECRET", raising=False)
    runner = CliRunner()
    bad = runner.invoke(app, ["dev", "--external-turn", "http://turn.example.org"])
    assert bad.exit_code == 2 and "--external-turn: not a turn:" in bad.output
    unsecret = runner.invoke(app, ["dev", "--external-turn", "turn:turn.example.org"])
    assert unsecret.exit_code == 2 and "needs its secret" in unsecret.output


def test_devstack_several_relays_each_with_own_ports_and_name() -> None:
    infra: Any = SimpleNamespace(url="nats://127.0.0.1:1")
    redis: Any = SimpleNamespace(url="redis://127.0.0.1:2/0")
    relays = [c for c in DevStack(relays=2).plan(infra, redis) if c.name.startswith("relay")]
    assert [c.name for c in relays] == ["relay-1", "relay-2"]
    listens = {_option(c.argv, "--listen") for c in relays}
    sides = {_option(c.argv, "--http-port") for c in relays}
    assert len(listens) == 2 and len(sides) == 2
    assert [c.info["turn_port"] for c in relays] == [
        int(_option(c.argv, "--listen").rsplit(":", 1)[1]) for c in relays]
    assert all(_option(c.argv, "--heartbeat-interval") == "1.0" for c in relays)


def test_devstack_several_relays_with_fixed_ports_take_the_next_ones() -> None:
    infra: Any = SimpleNamespace(url="nats://127.0.0.1:1")
    redis: Any = SimpleNamespace(url="redis://127.0.0.1:2/0")
    relays = [c for c in DevStack(relays=3, relay_port=3478).plan(infra, redis)
              if c.name.startswith("relay")]
    assert [c.info["turn_port"] for c in relays] == [3478, 3479, 3480]


def test_dev_relay_ids_follow_child_names() -> None:
    from services.common.authinfra import dev_relay_id

    assert dev_relay_id("relay") == "dev-relay"
    assert dev_relay_id("relay-2") == "dev-relay-2"
