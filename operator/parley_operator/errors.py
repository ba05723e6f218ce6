"""The operator's exceptions, one tree; Kubernetes client errors are mapped at `kube.py`.

    OperatorError
    ├── KubeError              a Kubernetes API call failed (status code kept)
    │   ├── NotFound           the object does not exist (404)
    │   └── Conflict           the object already exists or changed meanwhile (409)
    └── SpecError              a RelayPool spec that the operator cannot run
"""

from __future__ import annotations

__all__ = ["Conflict", "KubeError", "NotFound", "OperatorError", "SpecError"]


class OperatorError(Exception):
    """Base of every error raised by the operator."""


class KubeError(OperatorError):
    """A Kubernetes API call failed."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeError):
    """The object does not exist (HTTP 404)."""


class Conflict(KubeError):
    """The object already exists, or changed since it was read (HTTP 409)."""


class SpecError(OperatorError):
    """A RelayPool spec that does not validate (the message names the field)."""
