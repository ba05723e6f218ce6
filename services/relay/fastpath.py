"""Chooses the relay's packet path: the compiled helper (`_fastpath`) or pure Python.

The C extension is built by the package when a compiler is there (setup.py, optional);
`PARLEY_RELAY_FASTPATH=off` (or `--fastpath off`) forces the pure-Python path even then.
"""

from __future__ import annotations

import os
from types import ModuleType


def load(mode: str = "auto") -> ModuleType | None:
    """The compiled module, or None for the pure-Python path (`mode` "off", or not built)."""
    if mode == "off" or os.environ.get("PARLEY_RELAY_FASTPATH", "").lower() == "off":
        return None
    try:
        from . import _fastpath  # type: ignore[attr-defined]
    except ImportError:
        return None
    module: ModuleType = _fastpath
    return module
