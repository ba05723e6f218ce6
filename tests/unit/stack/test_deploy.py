"""The shipped single-server files: the systemd unit verifies, parley.toml loads.

(nginx and Caddy carry a real two-host call in tests/e2e/test_one_server.py.)
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from services.serveconfig import load_config

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def test_deploy_parley_toml_loads() -> None:
    cfg = load_config(DEPLOY / "parley.toml")
    assert (cfg.public_url, cfg.effective_port(), cfg.relay_port, cfg.relay_tls_port) == (
        "https://chat.example.org", 443, 3478, 5349)
    assert cfg.data_dir == Path("/var/lib/parley")


def test_deploy_systemd_unit_verifies(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    exe = tmp_path / "parley"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    unit = tmp_path / "parley.service"
    unit.write_text((DEPLOY / "parley.service").read_text()
                    .replace("/opt/parley/bin/parley", str(exe)))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stderr.strip()) == (0, "")
