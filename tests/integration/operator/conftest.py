"""Fixtures for the operator tests: a Kubernetes API (a fake, or a real cluster), fake relays
on the session's real NATS, and the operator itself running in-process with kopf.

Only the `api` fixture differs between the two variants: `fake` is kmock's in-memory
Kubernetes API emulator; `cluster` (marked `k8s`) is a real API server (the session's
control plane, tests/k8s/controlplane.py) with the RelayPool CRD, where the operator logs in
with its own ServiceAccount's token, bound by the chart's RBAC, in a fresh namespace: it
must do everything with the rights the chart gives it, and its log shows no 403.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kmock
import pytest

from parley_operator.handlers import Options, run_operator
from parley_operator.kube import Kube
from services.common.bus import Envelope, NatsBus
from services.common.infra import NatsServer
from services.common.messages import RelayControl, RelayHeartbeat, SfuControl, SfuHeartbeat
from services.common.subjects import relay_heartbeat, sfu_heartbeat
from tests.k8s.access import operator_access


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "k8s: needs a real cluster (KUBECONFIG)")


@dataclass
class Api:
    """A Kubernetes API the operator runs against, and a client for the test's own calls."""

    kube: Kube
    namespace: str
    server: str | None  # None: the operator logs in like kubectl (KUBECONFIG)
    fake: bool
    turn_secret: str | None = None  # the one TURN Secret the operator's RBAC allows

    def secret_name(self, pool: str) -> str:
        """The TURN Secret of `pool`: the chart's on a real cluster, else the pool's own."""
        return self.turn_secret or f"{pool}-turn"

    async def assign_load_balancer(self, service: str, ip: str) -> None:
        """Play the cloud's load-balancer controller: give a Service its ingress address."""
        await self.kube.patch("Service", service, {"status": {"loadBalancer": {
            "ingress": [{"ip": ip}]}}}, namespace=self.namespace, status=True)


def _declare_resources(kmock: Any) -> None:
    from kmock import ResourceInfo

    for kind in ("RelayPool", "SfuPool"):
        kmock.resources[f"parley.dev/v1alpha1/{kind.lower()}s"] = ResourceInfo(
            kind=kind, singular=kind.lower(), namespaced=True,
            subresources={"status", "scale"},
            verbs={"get", "list", "watch", "create", "patch", "update", "delete"})
    for plural, kind in (("pods", "Pod"), ("services", "Service"), ("secrets", "Secret"),
                         ("events", "Event")):
        kmock.resources[f"v1/{plural}"] = ResourceInfo(kind=kind, namespaced=True)
    # kopf waits for the namespaces resource to be discoverable (a real API always has it)
    kmock.resources["v1/namespaces"] = ResourceInfo(kind="Namespace", namespaced=False,
                                                    verbs={"list", "watch", "get"})


@pytest.fixture(params=["fake", pytest.param("cluster", marks=pytest.mark.k8s)])
async def api(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
              tmp_path: Any) -> AsyncIterator[Api]:
    """The Kubernetes API under the operator: the in-memory fake, or a real cluster."""
    if request.param == "fake":
        async with kmock.KubernetesEmulator() as fake, kmock.Server(fake):
            _declare_resources(fake)
            url = str(fake.url).rstrip("/")
            api = Api(kube=Kube.from_url(url), namespace="default", server=url, fake=True)
            yield api
            await api.kube.close()
        return
    plane = request.getfixturevalue("control_plane")
    access = await asyncio.to_thread(operator_access, plane, tmp_path)
    # the operator (kopf and its client) logs in like kubectl: with only its own token
    monkeypatch.setenv("KUBECONFIG", str(access.kubeconfig))
    api = Api(kube=Kube.from_kubeconfig(plane.kubeconfig), namespace=access.namespace,
              server=None, fake=False, turn_secret=access.turn_secret)
    yield api
    await api.kube.close()
    await asyncio.to_thread(plane.kubectl, "delete", "namespace", access.namespace,
                            "--wait=false")


class Clock:
    """The operator's wall clock, which a test may move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class FakeRelays:
    """Relays as NATS sees them: heartbeats out, control requests in (drain is obeyed)."""

    bus: NatsBus
    load: dict[str, int] = field(default_factory=dict)
    draining: set[str] = field(default_factory=set)
    controls: list[tuple[str, RelayControl | SfuControl]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    controls_subject = "parley.relay.control.*"

    def parse_control(self, data: bytes) -> RelayControl | SfuControl:
        return RelayControl.model_validate_json(data)

    def heartbeat(self, relay_id: str, load: int) -> tuple[str, bytes]:
        hb = RelayHeartbeat(relay_id=relay_id, public_host="198.51.100.7", allocations=load,
                            draining=relay_id in self.draining, sent_at=time.time())
        return relay_heartbeat(relay_id), hb.model_dump_json().encode()

    async def start(self) -> None:
        async def on_control(env: Envelope) -> None:
            relay_id = env.subject.rsplit(".", 1)[-1]
            request = self.parse_control(env.data)
            self.controls.append((relay_id, request))
            if request.action == "drain":
                self.draining.add(relay_id)

        await self.bus.subscribe(self.controls_subject, on_control)
        self._task = asyncio.create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            for relay_id, load in list(self.load.items()):
                await self.bus.publish(*self.heartbeat(relay_id, load))
            await asyncio.sleep(0.2)

    def asked(self, relay_id: str, action: str) -> bool:
        return any(r == relay_id and c.action == action for r, c in self.controls)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class FakeSfus(FakeRelays):
    """SFUs as NATS sees them: heartbeats with peers out, `SfuControl` in (drain obeyed)."""

    controls_subject = "parley.sfu.control.*"

    def parse_control(self, data: bytes) -> RelayControl | SfuControl:
        return SfuControl.model_validate_json(data)

    def heartbeat(self, relay_id: str, load: int) -> tuple[str, bytes]:
        hb = SfuHeartbeat(sfu_id=relay_id, peers=load, capacity=200,
                          draining=relay_id in self.draining, sent_at=time.time())
        return sfu_heartbeat(relay_id), hb.model_dump_json().encode()


async def _fake(nats_server: NatsServer, cls: type[FakeRelays]) -> AsyncIterator[FakeRelays]:
    bus = await NatsBus.connect(nats_server.url, name=f"fake-{cls.__name__.lower()}")
    fake = cls(bus)
    await fake.start()
    yield fake
    await fake.stop()
    await bus.close()


@pytest.fixture
async def relays(nats_server: NatsServer) -> AsyncIterator[FakeRelays]:
    """Fake relays on the session's real NATS."""
    async for fake in _fake(nats_server, FakeRelays):
        yield fake


@pytest.fixture
async def sfus(nats_server: NatsServer) -> AsyncIterator[FakeRelays]:
    """Fake SFUs on the session's real NATS."""
    async for fake in _fake(nats_server, FakeSfus):
        yield fake


@dataclass
class Running:
    """The operator running in this event loop."""

    clock: Clock
    probes: list[str]
    probe_ok: dict[str, bool]


@pytest.fixture
async def operator(api: Api, nats_server: NatsServer,
                   caplog: pytest.LogCaptureFixture) -> AsyncIterator[Running]:
    """The operator (kopf, in-process) against `api`, with a fake WebRTC probe.

    On a real cluster its log must show no 403: the chart's RBAC gives all it needs.
    """
    running = Running(clock=Clock(), probes=[], probe_ok={})

    async def probe(address: str, secret: str) -> tuple[bool, str]:
        assert secret, "the probe gets the current TURN secret"
        running.probes.append(address)
        ok = running.probe_ok.get(address, True)
        return ok, "ok: setup 40 ms" if ok else "ICE failed"

    opts = Options(nats_url=nats_server.url, server=api.server, reconcile_seconds=0.5,
                   probe_tick_seconds=0.5, heartbeat_ttl=3.0, sfu_pools=True,
                   sfu_nats_url="nats://sfu@nats:4222")
    # its own thread and event loop, as in production (and as kopf.testing.KopfRunner does):
    # on stopping, kopf cancels every task it did not start in its loop
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=asyncio.run, name="operator", daemon=True, args=(
        run_operator(opts, namespaces=[api.namespace], stop_flag=stop, ready_flag=ready,
                     probe=probe, clock=running.clock),))
    thread.start()
    assert await asyncio.to_thread(ready.wait, 20), "the operator did not start"
    caplog.set_level(logging.INFO)
    yield running
    stop.set()
    await asyncio.to_thread(thread.join, 20)
    if not api.fake:
        denied = [r.getMessage() for r in caplog.records
                  if "403" in r.getMessage() or "forbidden" in r.getMessage().lower()]
        assert not denied, f"the operator was refused: {denied[:3]}"


async def eventually(check: Callable[[], Awaitable[Any]], *, within: float = 20.0) -> Any:
    """Poll `check` until it returns something truthy.

    Assertion errors are retried, and so are lookup errors: a status the operator has not
    written yet has no such key. The last error is raised at the deadline.
    """
    deadline = asyncio.get_running_loop().time() + within
    last: BaseException | None = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            value = await check()
            if value:
                return value
        except (AssertionError, LookupError) as exc:
            last = exc
        await asyncio.sleep(0.1)
    raise AssertionError(f"not reached within {within}s: {last}")


def pool_manifest(api: Api, spec: dict[str, Any], *, name: str | None = None,
                  kind: str = "RelayPool") -> dict[str, Any]:
    """A RelayPool (or an SfuPool) with a unique name."""
    prefix = "relays" if kind == "RelayPool" else "sfus"
    meta: dict[str, Any] = {"name": name or f"{prefix}-{secrets.token_hex(3)}",
                            "namespace": api.namespace}
    if api.fake:  # the fake keeps what it is given: kopf's JSON patches test resourceVersion
        meta["resourceVersion"] = "1"
    extra = {"secretName": api.turn_secret} if api.turn_secret and kind == "RelayPool" else {}
    return {"apiVersion": "parley.dev/v1alpha1", "kind": kind, "metadata": meta,
            "spec": {"image": "parley:test", **extra, **spec}}
