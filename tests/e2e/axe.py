"""axe-core in the browser tests: fetched from the npm registry once (a test dependency, not
shipped), injected into a page, run, and its serious or critical violations returned.

The file lands in `build/axe/` (gitignored); `make axe` fetches it ahead of a run.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Final

from playwright.sync_api import Page

AXE_VERSION: Final[str] = "4.14.1"
ROOT: Final[Path] = Path(__file__).resolve().parents[2]
AXE_FILE: Final[Path] = ROOT / "build" / "axe" / f"axe-core-{AXE_VERSION}.min.js"
BLOCKING: Final[frozenset[str]] = frozenset({"serious", "critical"})


class AxeUnavailable(RuntimeError):
    """axe-core could not be fetched (no npm, or no registry)."""


def ensure_axe() -> Path:
    """The path of axe.min.js, fetching it with `npm pack axe-core@AXE_VERSION` if missing."""
    if AXE_FILE.is_file():
        return AXE_FILE
    npm = shutil.which("npm")
    if not npm:
        raise AxeUnavailable("npm is not installed")
    AXE_FILE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([npm, "pack", f"axe-core@{AXE_VERSION}", "--pack-destination", tmp],
                              capture_output=True, text=True, timeout=300, check=False)
        tgz = next(Path(tmp).glob("axe-core-*.tgz"), None)
        if done.returncode != 0 or tgz is None:
            raise AxeUnavailable(f"npm pack axe-core failed: {done.stderr.strip()[-500:]}")
        with tarfile.open(tgz) as tar:
            member = tar.extractfile("package/axe.min.js")
            if member is None:
                raise AxeUnavailable("axe.min.js is missing from the package")
            AXE_FILE.write_bytes(member.read())
    return AXE_FILE


def serious_violations(page: Page, axe_file: Path) -> list[dict[str, Any]]:
    """Run axe on `page` (WCAG 2.x A/AA and best practices); the serious or critical ones.

    The page's context must bypass CSP: the script is injected inline.
    """
    if not page.evaluate("() => Boolean(window.axe)"):
        page.add_script_tag(path=str(axe_file))
    result = page.evaluate("""async () => {
        const r = await window.axe.run(document, { resultTypes: ["violations"] });
        return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" ") + ": " + n.failureSummary) }));
    }""")
    return [v for v in result if v["impact"] in BLOCKING]
