"""Worker ports (`--worker-port-base`): settings checks, the heartbeat field, the core.

Worker k of a relay also listens alone on PORT+k, announced in heartbeats, so that rooms
can send every member of a room to one worker; these ports are the relay's own listening
ports (never a peer), and the compiled path caches an in-process route only between two
clients of one listening socket (it answers the receiver through the sender's socket).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from relay_unit_support import NOW, Sim, make_server

from services.common.messages import RelayHeartbeat
from services.relay.app import load_settings
from services.relay.errors import ConfigError
from services.relay.stun import Attr, Method
from services.relay.turn import Client, ToClient
from services.relay.turn.channeldata import pack_channel_data
from services.relay.worker import OWN_PORT, server_config

BASE: dict[str, Any] = {"secret": "s", "listen": "127.0.0.1:3478", "ports": "49152-65535"}


def test_worker_listen_ports_off_by_default() -> None:
    assert load_settings(**BASE, workers=4).worker_listen_ports() == []


def test_worker_listen_ports_one_per_worker() -> None:
    settings = load_settings(**BASE, workers=3, worker_port_base=3479)
    assert settings.worker_listen_ports() == [3479, 3480, 3481]


def test_worker_listen_ports_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_RELAY_WORKER_PORT_BASE", "4000")
    assert load_settings(**BASE, workers=2).worker_listen_ports() == [4000, 4001]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"worker_port_base": 65535}, "--worker-port-base 65535 with 2 workers ends past 65535"),
        ({"worker_port_base": 49151},
         "--worker-port-base ports 49151-49152 overlap the relayed ports 49152-65535"),
        ({"worker_port_base": 3477}, "--worker-port-base ports 3477-3478 include the --listen "
         "port 3478"),
        ({"worker_port_base": 9640}, "--worker-port-base ports 9640-9641 include the "
         "--http-port port 9641"),
        ({"worker_port_base": 5348, "tls_listen": ":5349", "tls_cert": "c", "tls_key": "k"},
         "--worker-port-base ports 5348-5349 include the --tls-listen port 5349"),
        ({"worker_port_base": 3479, "public_port": 30478}, "--worker-port-base cannot be "
         "combined with --public-port or --public-tcp-port"),
        ({"worker_port_base": 0}, "--worker-port-base (PARLEY_RELAY_WORKER_PORT_BASE): Input "
         "should be greater than or equal to 1"),
    ],
)
def test_worker_port_base_bad_values_one_line(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**{**BASE, "workers": 2, **overrides})
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_worker_port_base_at_most_64_workers() -> None:
    with pytest.raises(ConfigError, match="at most 64 workers, not 65"):
        load_settings(**BASE, workers=65, worker_port_base=2000)


def test_worker_ports_are_own_listening_ports() -> None:
    settings = load_settings(**BASE, relay_ip="127.0.0.1", workers=2, worker_port_base=3479)
    config = server_config(settings, workers=2)
    assert {3478, 3479, 3480} <= set(config.listen_ports)
    core = make_server(listen_ports=config.listen_ports, own_ips=("127.0.0.1",),
                       allow_peer=["127.0.0.0/8"])  # fmt: skip
    # even where peers on the relay's host are opened, its listening ports stay closed
    assert not core.policy.permits(("127.0.0.1", 3479))
    assert core.policy.permits(("127.0.0.1", 3481))


def test_heartbeat_worker_ports_default_empty_and_bounded() -> None:
    hb = RelayHeartbeat(relay_id="r", public_host="192.0.2.1", sent_at=0)
    assert hb.worker_ports == []
    assert RelayHeartbeat(relay_id="r", public_host="h", sent_at=0,
                          worker_ports=[1, 65535]).worker_ports == [1, 65535]  # fmt: skip
    for bad in ([0], [65536], list(range(1000, 1065))):
        with pytest.raises(ValidationError):
            RelayHeartbeat(relay_id="r", public_host="h", sent_at=0, worker_ports=bad)


def _pair(conn_b: int) -> tuple[Any, Sim, Sim]:
    """A on the shared port, B on the shared port (conn 0) or the worker's own one; each
    bound a channel to the other's relayed address."""
    core = make_server()
    a = Sim(core, Client("udp", ("203.0.113.5", 40000)))
    b = Sim(core, Client("udp", ("203.0.113.6", 40001), conn_b))
    b.next_port = 50100
    a_relayed = a.allocate().get(Attr.XOR_RELAYED_ADDRESS)
    b_relayed = b.allocate().get(Attr.XOR_RELAYED_ADDRESS)
    a.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4000}, peers=[b_relayed])
    b.request(Method.CHANNEL_BIND, {Attr.CHANNEL_NUMBER: 0x4001}, peers=[a_relayed])
    return core, a, b


def test_fast_route_local_only_within_one_listening_socket() -> None:
    core, a, _ = _pair(0)
    route = core.fast_route(a.client, 0x4000, NOW)
    assert route is not None and route.local


def test_fast_route_none_across_listening_sockets_python_path_delivers() -> None:
    core, a, b = _pair(OWN_PORT)
    assert core.fast_route(a.client, 0x4000, NOW) is None
    assert core.fast_route(b.client, 0x4001, NOW) is None
    # the Python path still delivers in process, to B as the client of its own socket
    out = core.channel_to_peer(a.client, pack_channel_data(0x4000, b"m"), NOW)
    assert out == ToClient(b.client, pack_channel_data(0x4001, b"m"))
    assert out.client.conn == OWN_PORT
