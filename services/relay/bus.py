"""Fleet membership over NATS: heartbeats out, control requests (drain, secrets) in.

Standalone when no NATS URL is configured. With one, the relay keeps relaying whatever
NATS does: the first connection is retried in the background, later outages are left to
nats-py's reconnect, and a publish that fails is simply skipped (the loop itself is
`services.common.heartbeat.HeartbeatLink`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from services.common.heartbeat import HeartbeatLink
from services.common.messages import RelayControl, RelayHeartbeat
from services.common.subjects import relay_control, relay_heartbeat

log = logging.getLogger("parley.relay.bus")


class FleetLink(HeartbeatLink):
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
        super().__init__(
            url,
            name=f"relay-{relay_id}",
            subject=relay_heartbeat(relay_id),
            interval=interval,
            payload=self._payload,
            handlers={relay_control(relay_id): self._control},
            log=log,
        )
        self.relay_id = relay_id
        self.heartbeat = heartbeat
        self.on_control = on_control

    def _payload(self) -> bytes:
        hb = self.heartbeat()
        # no worker ports: leave the field out, so a rooms from before it (its
        # messages forbid unknown fields) still reads this relay during an upgrade
        return hb.model_dump_json(exclude=None if hb.worker_ports else {"worker_ports"}).encode()

    async def _control(self, msg: Any) -> None:
        request = self.control_request(msg, RelayControl)
        if request is not None:
            self.on_control(request)


def make_heartbeat(**fields: Any) -> RelayHeartbeat:
    """A heartbeat stamped with the current time."""
    return RelayHeartbeat(sent_at=time.time(), **fields)
