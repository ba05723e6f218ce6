"""A NATS link that announces a node: heartbeats out every interval, requests in.

The relay's `FleetLink` and the SFU's `SfuLink` are this loop with their own subjects,
payloads and handlers. Standalone services never build one. The first connection is
retried in the background with backoff (0.5 s doubling to 10 s); later outages are left
to nats-py's reconnect; a heartbeat that cannot be sent is skipped; `close()` sends a last
one, then drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

import nats
from pydantic import BaseModel, ValidationError

from services.common.access import inbox_prefix_for

FIRST_RETRY: Final[float] = 0.5
MAX_RETRY: Final[float] = 10.0
DRAIN_TIMEOUT: Final[float] = 2.0

MsgHandler = Callable[[Any], Awaitable[None]]


#: A control request is a small JSON object; anything larger is ignored unread.
MAX_CONTROL_BYTES: Final[int] = 1024
Request = TypeVar("Request", bound=BaseModel)


class HeartbeatLink:
    """Publishes `payload()` on `subject` every `interval`; `handlers` map subjects to callbacks.

    Args:
        url: NATS server(s), comma-separated.
        name: the connection name the server shows (`relay-<id>`, `sfu-<id>`).
        subject: where heartbeats go.
        interval: seconds between heartbeats.
        payload: builds one heartbeat's bytes; called at each send, its errors skip the send.
        handlers: subjects to subscribe once connected, in order, each with its callback.
        log: the owning service's logger (it logs "connected to NATS").
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        subject: str,
        interval: float,
        payload: Callable[[], bytes],
        handlers: Mapping[str, MsgHandler],
        log: logging.Logger,
    ) -> None:
        self.url = url
        self.name = name
        self.subject = subject
        self.interval = interval
        self.payload = payload
        self.handlers = dict(handlers)
        self.log = log
        self.nc: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """True once connected and while nats-py is not reconnecting."""
        return self.nc is not None and bool(self.nc.is_connected)

    async def start(self) -> None:
        """Start the background connect + heartbeat loop."""
        self._task = asyncio.create_task(self._run())

    async def _connect(self) -> None:
        async def quiet(*_: Any) -> None:
            return None

        nc = await nats.connect(
            self.url,
            name=self.name,
            connect_timeout=2,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            error_cb=quiet,
            disconnected_cb=quiet,
            reconnected_cb=quiet,
            inbox_prefix=inbox_prefix_for(self.url),
        )
        for subject, handler in self.handlers.items():
            await nc.subscribe(subject, cb=handler)
        self.nc = nc
        self.log.info("connected to NATS")

    async def _run(self) -> None:
        delay = FIRST_RETRY
        while True:
            if self.nc is None:
                try:
                    await self._connect()
                except Exception:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY)
                    continue
            await self.publish()
            await asyncio.sleep(self.interval)

    async def publish(self) -> None:
        """Send one heartbeat now (skipped while NATS is unreachable)."""
        if not self.connected:
            return
        with contextlib.suppress(Exception):
            await self.nc.publish(self.subject, self.payload())

    def control_request(self, msg: Any, model: type[Request]) -> Request | None:
        """A control message as `model`, or None: an oversized one is ignored unread and a
        malformed one too, each with one warning line."""
        if len(msg.data) > MAX_CONTROL_BYTES:
            self.log.warning("ignored an oversized control request (%d bytes)", len(msg.data))
            return None
        try:
            return model.model_validate_json(msg.data)
        except ValidationError:
            self.log.warning("ignored a malformed control request")
            return None

    async def close(self) -> None:
        """Send a last heartbeat, then drain and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.nc is not None:
            await self.publish()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.drain(), DRAIN_TIMEOUT)
