"""Read the comment above every key of a values.yaml: the text values.schema.json repeats.

A key's comment is the run of `#` lines directly above it (no blank line between); the
lines are joined with one space. Keys are reported by their dotted path.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

_KEY: Final = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_.-]+):(?: |$)")
_COMMENT: Final = re.compile(r"^ *# ?(?P<text>.*)$")


def key_comments(path: Path) -> dict[str, str]:
    """Map each key's dotted path to its comment ('' when it has none).

    Args:
        path: a values.yaml written in block style (lists of scalars may be block lists).

    Returns:
        `{"rooms.autoscaling.enabled": "Create the HPA.", ...}` in file order.
    """
    result: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            pending = []
            continue
        comment = _COMMENT.match(line)
        if comment:
            pending.append(comment.group("text").strip())
            continue
        match = _KEY.match(line)
        if not match:
            pending = []
            continue
        indent = len(match.group("indent"))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([k for _, k in stack] + [match.group("key")])
        result[dotted] = " ".join(pending)
        stack.append((indent, match.group("key")))
        pending = []
    return result
