"""The aggregator: a durable JetStream pull consumer that folds raw beacons into day cells.

Every replica binds the same durable consumer, so JetStream hands each message to one of
them; a replica acknowledges a batch only after `AggregateStore.fold` counted it, and the
fold itself is idempotent per stream sequence, so a redelivery (lost ack, crash, NATS
restart) is never counted twice and an unacknowledged message is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Final

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from prometheus_client import Counter, Gauge, Histogram
from pydantic import ValidationError

from services.metrics.bus import AGGREGATOR_DURABLE, BEACON_STREAM
from services.metrics.cube import cell_of
from services.metrics.errors import AggregateStoreError
from services.metrics.schema import BeaconRecord
from services.metrics.store import AggregateStore, Fold

log = logging.getLogger(__name__)

FETCH_TIMEOUT: Final[float] = 1.0
RETRY_DELAY: Final[float] = 0.5
#: Seconds between two reads of the consumer's backlog (one JetStream API call each).
PENDING_EVERY: Final[float] = 5.0

FOLDED = Counter("parley_metrics_folded_total", "Beacons folded into day aggregates.")
REDELIVERED = Counter(
    "parley_metrics_redelivered_total", "Messages already folded (redelivery), not recounted."
)
MALFORMED = Counter("parley_metrics_malformed_total", "Raw messages that were not a record.")
LAG = Histogram(
    "parley_metrics_aggregation_lag_seconds", "From JetStream storing a beacon to its fold.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
PENDING = Gauge(
    "parley_metrics_aggregation_pending",
    "Beacons stored but not yet folded (the shared consumer's backlog, read every 5 s).",
)
LAST_FOLD = Gauge(
    "parley_metrics_last_fold_timestamp_seconds",
    "When this replica last folded a batch (0: never); with a backlog, a stalled aggregator.",
)


def backlog(num_pending: int | None, num_ack_pending: int | None) -> int:
    """Messages the consumer has not had acknowledged: not yet delivered plus in flight."""
    return max(0, num_pending or 0) + max(0, num_ack_pending or 0)


def to_fold(msg: Msg, *, epoch: int) -> Fold:
    """The fold of one raw message.

    Raises:
        ValueError: the message is not a valid `BeaconRecord`.
    """
    try:
        record = BeaconRecord.model_validate_json(msg.data)
    except ValidationError as exc:
        raise ValueError("not a beacon record") from exc
    return Fold(record.day, epoch, int(msg.metadata.sequence.stream), cell_of(record))


async def fold_batch(msgs: list[Msg], store: AggregateStore, *, epoch: int) -> int:
    """Fold then acknowledge a fetched batch; return how many were newly counted.

    Raises:
        AggregateStoreError: nothing was acknowledged; JetStream redelivers the batch.
    """
    folds: list[Fold] = []
    good: list[Msg] = []
    for m in msgs:
        try:
            folds.append(to_fold(m, epoch=epoch))
            good.append(m)
        except ValueError:
            MALFORMED.inc()
            await m.term()
    new = await store.fold(folds)
    now = time.time()
    for m in good:
        LAG.observe(max(0.0, now - m.metadata.timestamp.timestamp()))
        await m.ack()
    FOLDED.inc(new)
    REDELIVERED.inc(len(folds) - new)
    LAST_FOLD.set(now)
    return new


async def _read_backlog(psub: JetStreamContext.PullSubscription) -> None:
    """Set PENDING from the consumer's info; a failed read leaves the last figure."""
    try:
        info = await psub.consumer_info()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.debug("consumer info failed (%s)", type(exc).__name__)
        return
    PENDING.set(backlog(info.num_pending, info.num_ack_pending))


async def run(js: JetStreamContext, store: AggregateStore, *, epoch: int, batch: int,
              stop: asyncio.Event) -> None:
    """Fetch, fold and acknowledge until `stop` is set; survives NATS and Redis outages."""
    psub = None
    pending_read = 0.0
    while not stop.is_set():
        try:
            if psub is None:
                psub = await js.pull_subscribe_bind(AGGREGATOR_DURABLE, stream=BEACON_STREAM)
            if time.monotonic() >= pending_read:
                pending_read = time.monotonic() + PENDING_EVERY
                await _read_backlog(psub)
            msgs = await psub.fetch(batch, timeout=FETCH_TIMEOUT)
        except TimeoutError:
            continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("aggregator fetch failed (%s); retrying", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RETRY_DELAY)
            continue
        try:
            await fold_batch(msgs, store, epoch=epoch)
        except AggregateStoreError as exc:
            log.warning("aggregate store unavailable (%s); batch will be redelivered", exc)
            for m in msgs:
                with contextlib.suppress(Exception):
                    await m.nak(delay=RETRY_DELAY)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RETRY_DELAY)
        except Exception as exc:
            log.warning("aggregator ack failed (%s); unacked messages are redelivered",
                        type(exc).__name__)
    if psub is not None:
        with contextlib.suppress(Exception):
            await psub.unsubscribe()
