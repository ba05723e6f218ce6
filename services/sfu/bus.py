"""The SFU on NATS: heartbeats out; session requests (from signalling) and control in.

Standalone without a NATS URL. The first connection is retried in the background; later
outages are nats-py's to reconnect. Requests are answered synchronously by the node (no
per-request task beyond nats-py's callback).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import nats
from pydantic import ValidationError

from services.common.access import inbox_prefix_for
from services.common.messages import (
    SfuControl,
    SfuHeartbeat,
    SfuSessionReply,
    SfuSessionRequest,
)
from services.common.subjects import sfu_control, sfu_heartbeat, sfu_session

log = logging.getLogger("parley.sfu.bus")
MAX_REQUEST_BYTES: Final[int] = 130_000
MAX_CONTROL_BYTES: Final[int] = 1024


class SfuLink:
    """Connects, answers requests with `on_request`, publishes `heartbeat()` every interval."""

    def __init__(self, url: str, sfu_id: str, *, interval: float,
                 heartbeat: Callable[[], SfuHeartbeat],
                 on_request: Callable[[SfuSessionRequest], SfuSessionReply],
                 on_control: Callable[[SfuControl], None]) -> None:
        self.url = url
        self.sfu_id = sfu_id
        self.interval = interval
        self.heartbeat = heartbeat
        self.on_request = on_request
        self.on_control = on_control
        self.nc: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self.nc is not None and bool(self.nc.is_connected)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _connect(self) -> None:
        async def quiet(*_: Any) -> None:
            return None

        nc = await nats.connect(
            self.url, name=f"sfu-{self.sfu_id}", connect_timeout=2,
            max_reconnect_attempts=-1, reconnect_time_wait=1, error_cb=quiet,
            disconnected_cb=quiet, reconnected_cb=quiet,
            inbox_prefix=inbox_prefix_for(self.url))
        await nc.subscribe(sfu_session(self.sfu_id), cb=self._request)
        await nc.subscribe(sfu_control(self.sfu_id), cb=self._control)
        self.nc = nc
        log.info("connected to NATS")

    async def _request(self, msg: Any) -> None:
        if len(msg.data) > MAX_REQUEST_BYTES:
            reply = SfuSessionReply(ok=False, error="bad-offer")
        else:
            try:
                request = SfuSessionRequest.model_validate_json(msg.data)
            except ValidationError:
                reply = SfuSessionReply(ok=False, error="bad-offer")
            else:
                reply = self.on_request(request)
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(reply.model_dump_json(exclude_none=True).encode())

    async def _control(self, msg: Any) -> None:
        if len(msg.data) > MAX_CONTROL_BYTES:
            return
        try:
            request = SfuControl.model_validate_json(msg.data)
        except ValidationError:
            log.warning("ignored a malformed control request")
            return
        self.on_control(request)
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(b'{"ok":true}')

    async def _run(self) -> None:
        delay = 0.5
        while True:
            if self.nc is None:
                try:
                    await self._connect()
                except Exception:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
                    continue
            await self.publish()
            await asyncio.sleep(self.interval)

    async def publish(self) -> None:
        """One heartbeat now (skipped while NATS is unreachable)."""
        if not self.connected:
            return
        with contextlib.suppress(Exception):
            await self.nc.publish(sfu_heartbeat(self.sfu_id),
                                  self.heartbeat().model_dump_json().encode())

    async def close(self) -> None:
        """A last heartbeat, then drain and close."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.nc is not None:
            await self.publish()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.drain(), 2.0)


def now() -> float:
    return time.time()
