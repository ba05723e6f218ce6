"""Admin commands against the running single-server stack, and `parley serve`'s state.

`parley logpurge status|lookup|erase` find the stack's keys and NATS by themselves (the
state dir), with no PARLEY_* variable set; `parley serve` keeps the diagnostic log in
JetStream on disk across a restart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from services.common.infra import free_port


def _clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    return {**env, "PARLEY_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "services", *argv], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if not line:
            raise AssertionError(f"exited {proc.wait()}:\n{''.join(lines)[-3000:]}")
        if "Parley is running at" in line:
            return proc
    proc.kill()
    raise AssertionError("did not start in time")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)


def _join(port: int, room: str) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/rooms/{room}/join",
                                     data=b"{}", method="POST",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.status == 200


def _admin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services", "logpurge", *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_logpurge_status_lookup_erase_against_running_dev_stack(tmp_path: Path) -> None:
    env = _clean_env(tmp_path / "state")
    port = free_port()
    proc = _start(["dev", "--port", str(port), "--no-relay"], env)
    try:
        _join(port, "admin-room")
        _join(port, "other-room")
        status = _admin(env, "status")
        looked = _admin(env, "lookup", "--room", "Admin-Room")
        erased = _admin(env, "erase", "--room", "admin-room")
        after = _admin(env, "lookup", "--room", "admin-room")
        status_after = _admin(env, "status")
    finally:
        _stop(proc)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["records"] == 2
    records = [json.loads(line) for line in looked.stdout.splitlines()]
    assert [(r["room"], r["ip"], r["event"]) for r in records] == [
        ("admin-room", "127.0.0.1", "join")]
    assert json.loads(erased.stdout) == {"removed": 1}
    assert after.stdout == ""
    assert json.loads(status_after.stdout)["records"] == 1


def test_logpurge_without_a_running_stack_says_where_it_looked(tmp_path: Path) -> None:
    env = _clean_env(tmp_path / "nothing")
    r = _admin(env, "status")
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"parley: PARLEY_HASH_KEY is not set, and no running Parley stack found in "
        f"{(tmp_path / 'nothing').resolve()} (start `parley dev` or `parley serve`, or point "
        "PARLEY_DATA_DIR / --data-dir at its folder)")


def test_parley_serve_keeps_the_diagnostic_log_across_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "state"
    config = tmp_path / "parley.toml"
    config.write_text(
        f'data_dir = "{data}"\nhost = "127.0.0.1"\nport = {free_port()}\nrelay = false\n'
        '[env]\nPARLEY_ROOM_CAPACITY = "3"\n')
    env = _clean_env(data)
    proc = _start(["serve", "--config", str(config)], env)
    port = int(config.read_text().split("port = ")[1].split("\n")[0])
    try:
        _join(port, "kept-room")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config.json", timeout=10) as r:
            capacity = json.load(r)["capacity"]
    finally:
        _stop(proc)
    keys = (data / "parley.env").read_text()
    proc = _start(["serve", "--config", str(config)], env)
    try:
        looked = _admin(env, "lookup", "--room", "kept-room")
    finally:
        _stop(proc)
    assert capacity == 3
    assert (data / "parley.env").read_text() == keys
    assert oct((data / "parley.env").stat().st_mode & 0o777) == "0o600"
    assert [json.loads(line)["room"] for line in looked.stdout.splitlines()] == ["kept-room"]
