"""What the tests and the renderer need from the dashboards' PromQL: every target, Grafana's
template variables replaced by concrete values, and the metric names a query reads."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

DASHBOARD_DIR: Final = Path(__file__).resolve().parents[2] / "charts" / "parley" / "dashboards"

_VAR: Final = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_BRACES: Final = re.compile(r"\{[^{}]*\}")
_RANGE: Final = re.compile(r"\[[^\]]*\]")
_GROUPING: Final = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT: Final = re.compile(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS: Final = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right",
                              "and", "or", "unless", "offset", "bool", "inf", "nan", "atan2"})


@dataclass(frozen=True)
class Target:
    """One query of one panel."""

    dashboard: str
    panel: str
    expr: str
    legend: str


def load(directory: Path = DASHBOARD_DIR) -> dict[str, dict[str, Any]]:
    """uid -> dashboard model, for every JSON file in `directory`."""
    boards = {}
    for path in sorted(directory.glob("*.json")):
        board = json.loads(path.read_text())
        boards[board["uid"]] = board
    return boards


def targets(board: Mapping[str, Any]) -> Iterator[Target]:
    """Every PromQL target of a dashboard's panels (text panels have none)."""
    for panel in board["panels"]:
        for t in panel.get("targets", ()):
            yield Target(board["uid"], panel["title"], t["expr"], t.get("legendFormat", ""))


def constants(board: Mapping[str, Any]) -> dict[str, str]:
    """The dashboard's constant variables and their values."""
    return {v["name"]: str(v["query"]) for v in board["templating"]["list"]
            if v["type"] == "constant"}


def expand(expr: str, values: Mapping[str, str]) -> str:
    """`expr` with `$name` / `${name}` replaced from `values`.

    Raises:
        KeyError: a variable has no value (the caller forgot one).
    """
    def sub(match: re.Match[str]) -> str:
        return values[match.group(1) or match.group(2)]

    return _VAR.sub(sub, expr)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not functions, keywords or labels)."""
    text = _STRING.sub('""', expr)
    text = _BRACES.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS or name.startswith("$"):
            continue
        names.add(name)
    return names
