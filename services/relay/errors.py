"""Exceptions of the relay service shell (the protocol cores have their own `errors.py`).

```
RelayError             base of the shell's exceptions
├── ConfigError        a flag or variable is wrong; printed as one line, exit code 2
└── StartupError       a port is in use or a file is unreadable; one line, exit code 1
```
See `services.relay.stun.errors` and `services.relay.turn.errors` for the protocol trees.
"""

from __future__ import annotations


class RelayError(Exception):
    """Base class of the relay shell's exceptions."""


class ConfigError(RelayError):
    """A setting is invalid; the message names it."""


class StartupError(RelayError):
    """The relay cannot start (port in use, unreadable certificate)."""
