"""`python -m services.relay`: the same as `parley relay`."""

from __future__ import annotations

from .cli import app

if __name__ == "__main__":
    app(prog_name="parley relay")
