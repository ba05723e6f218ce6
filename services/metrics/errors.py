"""Exceptions of the metrics service.

The tree::

    MetricsError                   any metrics failure
    ├── ClientError                the caller broke the rules (remote error)  → its HTTP status
    │   ├── BadBeacon              not JSON, unknown field, fails the schema      (422)
    │   ├── BeaconTooLarge         more than 4 KiB                                (413)
    │   ├── UnsupportedMedia       neither application/json nor text/plain        (415)
    │   ├── Unauthorized           missing or invalid API key                     (401)
    │   ├── UnknownReport          no report of that name                         (404)
    │   └── BadPeriod              not a completed period of the configured size  (422)
    └── ServerError                we could not do our part (local error)
        ├── NotAcknowledged        JetStream did not acknowledge a beacon         (503)
        └── AggregateStoreError    the aggregate store answered unexpectedly      (503)

Each error carries the HTTP `status` it maps to; `routes.py` translates them at the HTTP
boundary and never lets a parser's or client library's exception escape.
"""

from __future__ import annotations

from typing import ClassVar


class MetricsError(Exception):
    """Base of every metrics error."""

    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClientError(MetricsError):
    """The caller sent something the service does not accept."""

    status = 400


class BadBeacon(ClientError):
    """The beacon is not JSON, carries a field not in the schema, or fails validation."""

    status = 422


class BeaconTooLarge(ClientError):
    """The beacon body is larger than 4 KiB."""

    status = 413


class UnsupportedMedia(ClientError):
    """The beacon's content type is neither application/json nor text/plain."""

    status = 415


class Unauthorized(ClientError):
    """No valid API key was given for a report."""

    status = 401


class UnknownReport(ClientError):
    """There is no report of that name."""

    status = 404


class BadPeriod(ClientError):
    """The period asked for is malformed, not of the configured size, or not yet over."""

    status = 422


class ServerError(MetricsError):
    """The service could not do its part; the caller may retry."""

    status = 503


class NotAcknowledged(ServerError):
    """JetStream did not acknowledge the beacon, so it was not accepted."""


class AggregateStoreError(ServerError):
    """The aggregate store (Redis) failed or answered unexpectedly."""
