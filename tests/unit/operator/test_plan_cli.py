"""`parley operator plan` answers from outside, as a platform engineer would ask it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "operator" / "examples"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services", "operator", "plan", *args],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "COLUMNS": "250"})


@pytest.mark.parametrize(
    ("observed", "desired", "actions"),
    [("observed-busy.json", 5, ["create", "create", "create"]),
     ("observed-quiet.json", 2, ["drain"]),
     ("observed-draining.json", 2, ["delete", "delete", "create"])],
)
def test_operator_plan_cli_scenarios(observed: str, desired: int, actions: list[str]) -> None:
    r = run("--pool", str(EXAMPLES / "pool.yaml"), "--observed", str(EXAMPLES / observed),
            "--now", "2026-11-25T12:00:00Z")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["desired_replicas"] == desired
    assert [a["action"] for a in out["actions"]] == actions
    assert set(out["actions"][0]) == {"action", "relay", "reason"}


def test_operator_plan_cli_bad_input_names_it(tmp_path: Path) -> None:
    bad = tmp_path / "pool.yaml"
    bad.write_text("spec:\n  replicas: {min: 4, max: 2}\n")
    r = run("--pool", str(bad), "--observed", str(EXAMPLES / "observed-busy.json"))
    assert r.returncode == 2 and "replicas.min (4) is above replicas.max (2)" in r.stderr
    r = run("--pool", str(EXAMPLES / "pool.yaml"), "--observed", str(tmp_path / "none.json"))
    assert r.returncode == 2 and "cannot read" in r.stderr
    r = run("--pool", str(EXAMPLES / "pool.yaml"), "--observed",
            str(EXAMPLES / "observed-busy.json"), "--now", "yesterday")
    assert r.returncode == 2 and "not ISO 8601" in r.stderr


def test_operator_plan_cli_sfupool_counts_peers() -> None:
    """The same observed load read as an SfuPool's peers (target 100 per SFU)."""
    r = run("--pool", str(EXAMPLES / "sfupool.yaml"), "--observed",
            str(EXAMPLES / "observed-busy.json"), "--now", "2026-11-25T12:00:00Z")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["desired_replicas"] == 8  # ceil(810 / 100) = 9, clamped to max 8
    assert [a["action"] for a in out["actions"]] == ["create"] * 6
    assert "810 peers, target 100" in out["actions"][0]["reason"]
