"""The Containerfile, read statically (tests/image/ runs the built image): a Debian bookworm
base (Python 3.11), a final stage with no build tools running as a non-root user, `parley` as the
entrypoint, and every command the chart gives that entrypoint a real `parley` subcommand."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest

from tests.chart.conftest import ROOT, pod_specs

CONTAINERFILE: Final = ROOT / "Containerfile"
PARLEY: Final = Path(sys.executable).parent / "parley"
BUILD_TOOLS: Final = ("build-essential", "gcc", "g++", "make", "-dev ", "pkg-config", "clang")
# subcommand -> module that provides it (absent from a build that does not have it yet)
PROVIDERS: Final = {"metrics": "services.metrics.cli", "operator": "parley_operator.cli",
                    "relay": "services.relay.cli", "logpurge": "services.logpurge.cli"}


def _stages() -> list[dict[str, Any]]:
    """Split the Containerfile into stages: {'from', 'name', 'lines'} (continuations joined)."""
    text = re.sub(r"\\\n\s*", " ", CONTAINERFILE.read_text())
    args: dict[str, str] = {}
    stages: list[dict[str, Any]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and not stages and "=" in rest:
            key, _, value = rest.partition("=")
            args[key] = value
        elif word == "FROM":
            parts = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            name = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None
            stages.append({"from": image, "name": name, "lines": []})
        elif stages:
            stages[-1]["lines"].append((word, rest))
    return stages


def _final(word: str) -> list[str]:
    return [rest for w, rest in _stages()[-1]["lines"] if w == word]


def test_containerfile_multi_stage_on_bookworm_base_argument() -> None:
    stages = _stages()
    assert len(stages) >= 2
    for stage in stages:  # the base made by tools/image/base.sh: debootstrap bookworm
        assert stage["from"] == "localhost/parley-base:bookworm", stage["from"]
    assert "ARG BASE_IMAGE=" in CONTAINERFILE.read_text(), "the base stays a build argument"


def test_containerfile_installs_only_from_local_wheels() -> None:
    runs = [rest for w, rest in _stages()[0]["lines"] if w == "RUN"]
    installs = [r for r in runs if "pip install" in r]
    assert installs and all("--no-index" in r for r in installs), installs


def test_containerfile_final_stage_has_no_build_tools() -> None:
    final = _stages()[-1]
    for word, rest in final["lines"]:
        if word == "RUN":
            assert "apt-get install" not in rest and "pip install" not in rest, rest
            for tool in BUILD_TOOLS:
                assert tool not in rest + " ", rest
    copies = [rest for word, rest in final["lines"] if word == "COPY"]
    assert copies and all(c.startswith("--from=") for c in copies), copies


def test_containerfile_runs_as_non_root() -> None:
    (user,) = _final("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "USER must be a numeric non-root UID (runAsNonRoot)"
    assert uid == "10001", "the chart's pods run as 10001"


def test_containerfile_entrypoint_is_parley_and_cmd_a_subcommand() -> None:
    (entrypoint,) = _final("ENTRYPOINT")
    assert json.loads(entrypoint) == ["parley"]
    (cmd,) = _final("CMD")
    command = json.loads(cmd)
    _assert_subcommand(command)


def _assert_subcommand(args: list[str]) -> None:
    """`parley ARGS[0] [ARGS[1] if it is a word] --help` exits 0, or skip when the module
    providing that subcommand is not part of this build yet."""
    words = [a for a in args[:2] if not a.startswith("-")]
    module = PROVIDERS.get(words[0])
    if module is not None:
        try:
            present = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            present = False
        if not present:
            pytest.skip(f"`parley {words[0]}` comes from {module}, not in this build yet")
    if not PARLEY.exists():
        pytest.skip(f"{PARLEY} is not installed (make setup)")
    proc = subprocess.run([str(PARLEY), *words, "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, f"parley {' '.join(words)} --help:\n{proc.stderr}"


def _chart_commands(render: Any) -> list[list[str]]:
    commands = []
    for _, pod in pod_specs(render()):
        for c in pod["containers"]:
            if c["image"].startswith("ghcr.io/parley/parley"):
                commands.append(c["args"])
    return commands


@pytest.mark.parametrize("component", ["rooms", "signaling", "metrics", "logpurge", "operator"])
def test_chart_commands_are_parley_subcommands(render: Any, component: str) -> None:
    commands = [c for c in _chart_commands(render) if c[0] == component]
    assert len(commands) == 1, f"no container runs `parley {component}`"
    _assert_subcommand(commands[0])
