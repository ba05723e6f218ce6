"""NATS wiring of the metrics service: the raw-beacon stream, publishing, the durable consumer.

Raw beacons go to the JetStream stream `PARLEY_BEACONS` (file storage, `max_age` ≤ 48 h,
de-duplication by `Nats-Msg-Id` = the session nonce). The aggregator reads them through one
durable pull consumer shared by every replica (explicit acks), so each message is handed to
one replica at a time and redelivered only if not acknowledged.

Subjects come from `services/common/subjects.py` (`beacons()`, `BEACON_STREAM`).
"""

from __future__ import annotations

import logging
from typing import Final

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from services.common import subjects
from services.metrics.errors import NotAcknowledged

log = logging.getLogger(__name__)

BEACON_SUBJECT: Final[str] = subjects.beacons()
BEACON_STREAM: Final[str] = subjects.BEACON_STREAM
AGGREGATOR_DURABLE: Final[str] = subjects.BEACON_CONSUMER
PUBLISH_TIMEOUT: Final[float] = 5.0
ACK_WAIT: Final[float] = 30.0
MAX_ACK_PENDING: Final[int] = 20_000


def stream_config(*, max_age: float, dedup_window: float) -> StreamConfig:
    """The raw-beacon stream: file storage, limits retention, nothing older than `max_age`."""
    return StreamConfig(
        name=BEACON_STREAM,
        subjects=[BEACON_SUBJECT],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=max_age,
        duplicate_window=min(dedup_window, max_age),
        max_msg_size=4096,
        description="Raw Parley usage beacons (no IP, no room, no UA string); max 48 h.",
    )


def consumer_config() -> ConsumerConfig:
    """The aggregator's durable pull consumer (explicit acks; safe with many replicas)."""
    return ConsumerConfig(
        durable_name=AGGREGATOR_DURABLE,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT,
        max_ack_pending=MAX_ACK_PENDING,
        filter_subject=BEACON_SUBJECT,
    )


async def ensure_stream(js: JetStreamContext, *, max_age: float, dedup_window: float) -> int:
    """Create or update the raw-beacon stream and the consumer; return the stream's epoch.

    The epoch (the stream's creation time in µs) qualifies stream sequence numbers, so a
    re-created stream's sequences never collide with ones already folded.
    """
    cfg = stream_config(max_age=max_age, dedup_window=dedup_window)
    try:
        info = await js.stream_info(BEACON_STREAM)
        info = await js.update_stream(cfg)
    except nats.js.errors.NotFoundError:
        info = await js.add_stream(cfg)
    await js.add_consumer(BEACON_STREAM, consumer_config())
    created = info.created
    return int(created.timestamp() * 1e6) if created is not None else 0


async def publish_beacon(js: JetStreamContext, payload: bytes, *, msg_id: str) -> bool:
    """Publish one record and wait for JetStream's acknowledgement.

    Args:
        js: the JetStream context.
        payload: the `BeaconRecord` JSON.
        msg_id: the session nonce, used only as `Nats-Msg-Id` for de-duplication.

    Returns:
        True if stored now, False if it was a duplicate of one already stored.

    Raises:
        NotAcknowledged: JetStream did not acknowledge (down, timeout, no stream).
    """
    try:
        ack = await js.publish(BEACON_SUBJECT, payload, timeout=PUBLISH_TIMEOUT,
                               stream=BEACON_STREAM, headers={"Nats-Msg-Id": msg_id})
    except (nats.errors.Error, nats.js.errors.Error, TimeoutError, OSError) as exc:
        raise NotAcknowledged(f"JetStream did not acknowledge: {type(exc).__name__}") from exc
    return not bool(ack.duplicate)
