"""Screenshots kept as artifacts of the e2e run: a few per page and viewport, to look at
(not for pixel diffs). They go to `build/screenshots/` (gitignored), or to the folder in
`PARLEY_SCREENSHOTS`; the `shots` fixture prints where.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from playwright.sync_api import Page

ROOT: Final[Path] = Path(__file__).resolve().parents[2]
DESKTOP: Final[dict[str, int]] = {"width": 1280, "height": 800}
PHONE: Final[dict[str, int]] = {"width": 390, "height": 844}


def folder() -> Path:
    """Where screenshots go (created)."""
    path = Path(os.environ.get("PARLEY_SCREENSHOTS") or ROOT / "build" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def viewport_name(page: Page) -> str:
    size = page.viewport_size or DESKTOP
    return "phone" if size["width"] < 600 else "desktop"


def shoot(page: Page, name: str) -> Path:
    """Save `page` as `<name>-<desktop|phone>.png`; return the file."""
    safe = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    path = folder() / f"{safe}-{viewport_name(page)}.png"
    page.screenshot(path=str(path))
    return path
