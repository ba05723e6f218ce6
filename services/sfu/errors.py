"""Exceptions of the SFU.

```
SfuError              base
├── ConfigError       a flag or variable is wrong; one line, exit code 2
├── StartupError      the UDP or HTTP port cannot be bound; one line, exit code 1
└── SessionRefused    an offer is not accepted; `reason` is the reply's `error`
    └── BadOffer      the offer breaks the contract (no BUNDLE, no rtcp-mux, no ICE/DTLS)
```
"""

from __future__ import annotations


class SfuError(Exception):
    """Base class of the SFU's exceptions."""


class ConfigError(SfuError):
    """A setting is invalid; the message names it."""


class StartupError(SfuError):
    """The SFU cannot start."""


class SessionRefused(SfuError):
    """An offer was refused; `reason` goes back to signalling (never user input)."""

    reason = "refused"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class BadOffer(SessionRefused):
    """The offer is malformed or asks for something the SFU does not do."""

    reason = "bad-offer"
