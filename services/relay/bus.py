"""Fleet membership over NATS: heartbeats out, control requests (drain, secrets) in.

Standalone when no NATS URL is configured. With one, the relay keeps relaying whatever
NATS does: the first connection is retried in the background, later outages are left to
nats-py's reconnect, and a publish that fails is simply skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import nats
from pydantic import ValidationError

from services.common.access import inbox_prefix_for
from services.common.messages import RelayControl, RelayHeartbeat
from services.common.subjects import relay_control, relay_heartbeat

log = logging.getLogger("parley.relay.bus")


class FleetLink:
    """Publishes heartbeats built by `heartbeat()` and hands control requests to `on_control`."""

    def __init__(
        self,
        url: str,
        relay_id: str,
        *,
        interval: float,
        heartbeat: Callable[[], RelayHeartbeat],
        on_control: Callable[[RelayControl], None],
    ) -> None:
        self.url = url
        self.relay_id = relay_id
        self.interval = interval
        self.heartbeat = heartbeat
        self.on_control = on_control
        self.nc: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the background connect + heartbeat loop."""
        self._task = asyncio.create_task(self._run())

    async def _connect(self) -> None:
        async def quiet(*_: Any) -> None:
            return None

        nc = await nats.connect(
            self.url,
            name=f"relay-{self.relay_id}",
            connect_timeout=2,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            error_cb=quiet,
            disconnected_cb=quiet,
            reconnected_cb=quiet,
            inbox_prefix=inbox_prefix_for(self.url),
        )
        await nc.subscribe(relay_control(self.relay_id), cb=self._control)
        self.nc = nc
        log.info("connected to NATS")

    async def _control(self, msg: Any) -> None:
        try:
            request = RelayControl.model_validate_json(msg.data)
        except ValidationError:
            log.warning("ignored a malformed control request")
            return
        self.on_control(request)

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
        """Send one heartbeat now (skipped while NATS is unreachable)."""
        if self.nc is None or not self.nc.is_connected:
            return
        with contextlib.suppress(Exception):
            hb = self.heartbeat()
            # no worker ports: leave the field out, so a rooms from before it (its
            # messages forbid unknown fields) still reads this relay during an upgrade
            data = hb.model_dump_json(exclude=None if hb.worker_ports else {"worker_ports"})
            await self.nc.publish(relay_heartbeat(self.relay_id), data.encode())
            await self.nc.publish(relay_heartbeat(self.relay_id), data)

    async def close(self) -> None:
        """Send a last heartbeat, then drain and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.nc is not None:
            await self.publish()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.drain(), 2.0)


def make_heartbeat(**fields: Any) -> RelayHeartbeat:
    """A heartbeat stamped with the current time."""
    return RelayHeartbeat(sent_at=time.time(), **fields)
