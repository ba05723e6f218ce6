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
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from services.metrics.bus import AGGREGATOR_DURABLE, BEACON_STREAM
from services.metrics.cube import cell_of
from services.metrics.errors import AggregateStoreError
from services.metrics.schema import BeaconRecord
from services.metrics.store import AggregateStore, Fold

log = logging.getLogger(__name__)

FETCH_TIMEOUT: Final[float] = 1.0
RETRY_DELAY: Final[float] = 0.5

FOLDED = Counter("parley_metrics_folded_total", "Beacons folded into day aggregates.")
REDELIVERED = Counter(
    "parley_metrics_redelivered_total", "Messages already folded (redelivery), not recounted."
)
MALFORMED = Counter("parley_metrics_malformed_total", "Raw messages that were not a record.")
LAG = Histogram(
    "parley_metrics_aggregation_lag_seconds", "From JetStream storing a beacon to its fold.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


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
    return new


async def run(js: JetStreamContext, store: AggregateStore, *, epoch: int, batch: int,
              stop: asyncio.Event) -> None:
    """Fetch, fold and acknowledge until `stop` is set; survives NATS and Redis outages."""
    psub = None
    while not stop.is_set():
        try:
            if psub is None:
                psub = await js.pull_subscribe_bind(AGGREGATOR_DURABLE, stream=BEACON_STREAM)
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
