"""`parley relay probe`: two aiortc peers connect through one relay with relay-only ICE.

Both peers get TURN credentials minted with the shared secret, gather only relayed
candidates, open a data channel and bounce a few messages: the readiness check of a
relay as a browser would experience it. Reports setup time and round-trip time.

`allocate()` is the light check (rooms' health probe of external TURN servers): one TURN
Allocate with REST credentials, released at once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Final

from services.common.credentials import mint_turn_credential

from .errors import RelayError
from .settings import split_hostport

PINGS: Final[int] = 5


class ProbeError(RelayError):
    """The probe call could not be set up or did not carry data."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe measured."""

    setup_ms: float
    rtt_ms: float
    candidate: str


async def probe(
    host: str,
    port: int,
    *,
    secret: str,
    transport: str = "udp",
    timeout: float = 20.0,  # noqa: ASYNC109  (one overall deadline, enforced inside)
) -> ProbeResult:
    """Connect two peers through `host:port` and measure.

    Raises:
        ProbeError: no relayed candidate (allocation refused), ICE/DTLS failed, or timeout.
    """
    try:
        return await asyncio.wait_for(_probe(host, port, secret, transport), timeout)
    except TimeoutError as exc:
        raise ProbeError(f"no data channel through {host}:{port} within {timeout:.0f} s") from exc


async def _probe(host: str, port: int, secret: str, transport: str) -> ProbeResult:
    from aiortc import (
        RTCConfiguration,
        RTCIceServer,
        RTCPeerConnection,
        RTCSessionDescription,
    )
    from aiortc.rtcconfiguration import RTCIceTransportPolicy

    if transport not in ("udp", "tcp"):
        raise ProbeError(f"transport must be udp or tcp, not {transport!r}")
    cred = mint_turn_credential(secret, ttl=600)
    server = RTCIceServer(
        urls=[f"turn:{host}:{port}?transport={transport}"],
        username=cred.username,
        credential=cred.password,
    )
    config = RTCConfiguration(iceServers=[server], iceTransportPolicy=RTCIceTransportPolicy.RELAY)
    caller, callee = RTCPeerConnection(config), RTCPeerConnection(config)
    loop = asyncio.get_running_loop()
    opened: asyncio.Future[None] = loop.create_future()
    replies: asyncio.Queue[str] = asyncio.Queue()
    try:
        started = time.perf_counter()
        channel = caller.createDataChannel("probe")

        def _opened() -> None:
            if not opened.done():
                opened.set_result(None)

        def _reply(message: Any) -> None:
            replies.put_nowait(str(message))

        def _incoming(remote: Any) -> None:
            remote.on("message", remote.send)

        channel.on("open", _opened)
        channel.on("message", _reply)
        callee.on("datachannel", _incoming)

        await caller.setLocalDescription(await caller.createOffer())
        offer = caller.localDescription
        if "typ relay" not in offer.sdp:
            raise ProbeError(f"no relayed candidate from {host}:{port} (allocation refused?)")
        await callee.setRemoteDescription(RTCSessionDescription(offer.sdp, offer.type))
        await callee.setLocalDescription(await callee.createAnswer())
        answer = callee.localDescription
        await caller.setRemoteDescription(RTCSessionDescription(answer.sdp, answer.type))
        await opened
        setup = time.perf_counter() - started
        rtts = []
        for i in range(PINGS):
            sent = time.perf_counter()
            channel.send(f"ping {i}")
            if await replies.get() != f"ping {i}":
                raise ProbeError("data channel returned the wrong message")
            rtts.append(time.perf_counter() - sent)
        return ProbeResult(setup * 1000, sorted(rtts)[len(rtts) // 2] * 1000, f"relay/{transport}")
    finally:
        await caller.close()
        await callee.close()


async def allocate(
    host: str,
    port: int,
    *,
    secret: str,
    transport: str = "udp",
    timeout: float = 5.0,  # noqa: ASYNC109  (one overall deadline, enforced inside)
) -> float:
    """One TURN Allocate on `host:port` with a credential minted from `secret`, then
    release it (a Refresh with lifetime 0); returns the milliseconds the Allocate took.

    Raises:
        ProbeError: refused (wrong secret, quota), unreachable, or no answer in `timeout`.
    """
    import logging

    from aioice.turn import create_turn_endpoint

    if transport not in ("udp", "tcp"):
        raise ProbeError(f"transport must be udp or tcp, not {transport!r}")
    # aioice logs each allocation's addresses at INFO: not in our logs
    logging.getLogger("aioice.turn").setLevel(logging.WARNING)
    cred = mint_turn_credential(secret, ttl=600)
    started = time.perf_counter()
    try:
        endpoint, _ = await asyncio.wait_for(create_turn_endpoint(
            asyncio.DatagramProtocol, (host, port), cred.username, cred.password,
            lifetime=600, transport=transport), timeout)
    except TimeoutError as exc:
        raise ProbeError(f"no allocation within {timeout:.0f} s") from exc
    except Exception as exc:
        raise ProbeError(f"allocation failed: {type(exc).__name__}") from exc
    elapsed = (time.perf_counter() - started) * 1000
    endpoint.close()  # deletes the allocation in the background
    return elapsed


def run_probe(
    target: str, *, secret: str, transport: str = "udp", timeout: float = 20.0
) -> ProbeResult:
    """Synchronous wrapper for the CLI; `ProbeError` on any failure."""
    try:
        host, port = split_hostport(target, default_port=3478)
    except ValueError as exc:
        raise ProbeError(str(exc)) from exc
    try:
        return asyncio.run(probe(host, port, secret=secret, transport=transport, timeout=timeout))
    except ProbeError:
        raise
    except Exception as exc:
        raise ProbeError(f"probe failed: {type(exc).__name__}: {exc}") from exc


def run_allocate(target: str, *, secret: str, transport: str = "udp",
                 timeout: float = 5.0) -> float:
    """Synchronous `allocate()` for the CLI (`--allocate-only`); `ProbeError` on failure."""
    try:
        host, port = split_hostport(target, default_port=3478)
    except ValueError as exc:
        raise ProbeError(str(exc)) from exc
    return asyncio.run(allocate(host, port, secret=secret, transport=transport, timeout=timeout))
