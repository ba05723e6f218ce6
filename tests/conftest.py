"""Shared fixtures: a real NATS (JetStream) and a real Redis per test session, on free ports,
and one headless Chromium (fake camera and microphone) for every browser test."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.common.bus import NatsBus
from services.common.infra import NatsServer, RedisServer
from services.common.roomstate import EPOCH_KEY
from tests.k8s.controlplane import ControlPlane, ControlPlaneError, build_binaries

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session", autouse=True)
def private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """`parley dev` keeps keys in a state dir (~/.local/state/parley by default): the
    tests use their own, never the person's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PARLEY_DATA_DIR", str(tmp_path_factory.mktemp("parley-state")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    """A real nats-server -js started for this test session (never the machine's own)."""
    srv = NatsServer().start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server started for this test session (never the machine's own)."""
    srv = RedisServer().start()
    yield srv
    srv.stop()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client on the session's Redis, flushed before each test."""
    client = aioredis.from_url(redis_server.url, decode_responses=True)
    # a test's flush is not Redis losing the services' data: keep the epoch (fault 4)
    epoch = await client.get(EPOCH_KEY)
    await client.flushall()
    if epoch:
        await client.set(EPOCH_KEY, epoch)
    yield client
    await client.aclose()


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[NatsBus]:
    """A connected NatsBus on the session's NATS."""
    b = await NatsBus.connect(nats_server.url, name="test")
    yield b
    await b.close()


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A real Kubernetes control plane (etcd, kube-apiserver, controller-manager, scheduler,
    KWOK with one simulated node) on loopback for this test session.

    Uses the binaries `make k8s-binaries` built (never builds them here: a cold build takes
    minutes); skips with the reason when they are missing. `PARLEY_K8S_REQUIRED=1` (set by
    .ci/run) turns that skip into a failure.
    """
    try:
        bins = build_binaries(check_only=True)
    except ControlPlaneError as exc:
        if os.environ.get("PARLEY_K8S_REQUIRED") == "1":
            pytest.fail(f"no control plane: {exc}")
        pytest.skip(f"no control plane: {exc}")
    plane = ControlPlane(tmp_path_factory.mktemp("cluster"))
    plane.up(bins)
    yield plane
    plane.down()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    """A headless Chromium (fake camera and microphone) per test module.

    Module scope, not session: playwright's sync API keeps an event loop on this thread
    while it lives, which the asyncio tests of other modules must not meet.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[[], Any]]:
    """Make pages, each in its own context (its own storage), closed after the test."""
    contexts: list[Any] = []

    def make() -> Any:
        ctx = browser.new_context(permissions=["camera", "microphone"])
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()
