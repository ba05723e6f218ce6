"""The SFU on NATS: heartbeats out; session requests (from signalling) and control in.

Standalone without a NATS URL. The first connection is retried in the background; later
outages are nats-py's to reconnect (the loop itself is
`services.common.heartbeat.HeartbeatLink`). Requests are answered synchronously by the
node (no per-request task beyond nats-py's callback).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Final

from pydantic import ValidationError

from services.common.heartbeat import HeartbeatLink
from services.common.messages import (
    SfuControl,
    SfuHeartbeat,
    SfuSessionReply,
    SfuSessionRequest,
)
from services.common.subjects import sfu_control, sfu_heartbeat, sfu_session

log = logging.getLogger("parley.sfu.bus")
MAX_REQUEST_BYTES: Final[int] = 130_000


class SfuLink(HeartbeatLink):
    """Connects, answers requests with `on_request`, publishes `heartbeat()` every interval."""

    def __init__(self, url: str, sfu_id: str, *, interval: float,
                 heartbeat: Callable[[], SfuHeartbeat],
                 on_request: Callable[[SfuSessionRequest], SfuSessionReply],
                 on_control: Callable[[SfuControl], None]) -> None:
        super().__init__(
            url, name=f"sfu-{sfu_id}", subject=sfu_heartbeat(sfu_id), interval=interval,
            payload=lambda: self.heartbeat().model_dump_json().encode(),
            handlers={sfu_session(sfu_id): self._request, sfu_control(sfu_id): self._control},
            log=log)
        self.sfu_id = sfu_id
        self.heartbeat = heartbeat
        self.on_request = on_request
        self.on_control = on_control

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
        request = self.control_request(msg, SfuControl)
        if request is not None:
            self.on_control(request)
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(b'{"ok":true}')


def now() -> float:
    return time.time()
