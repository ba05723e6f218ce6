"""The single-server state dir and parley.toml."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from services.serveconfig import ServeConfigError, load_config
from services.statedir import GENERATED, StateDir, StateDirError, default_dir


def test_default_dir_order(tmp_path: Path) -> None:
    assert default_dir({"PARLEY_DATA_DIR": "/d", "XDG_STATE_HOME": "/x"}) == Path("/d")
    assert default_dir({"XDG_STATE_HOME": "/x"}) == Path("/x/parley")


def test_state_dir_keys_made_once_private(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "s")
    first = state.keys({"PARLEY_HASH_KEY": "given"})
    again = state.keys({})
    assert first == again and first["PARLEY_HASH_KEY"] == "given"
    assert set(first) == set(GENERATED)
    assert stat.S_IMODE(state.keys_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o700


def test_state_dir_admin_env_needs_a_live_stack(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.keys({})
    with pytest.raises(StateDirError, match="no running Parley stack found"):
        state.admin_env()
    state.write_run({"PARLEY_NATS_URL": "nats://127.0.0.1:1"})
    env = state.admin_env()
    assert env["PARLEY_NATS_URL"] == "nats://127.0.0.1:1" and env["PARLEY_HASH_KEY"]
    state.clear_run()
    assert not state.run_file.exists()


def test_state_dir_admin_env_dead_pid_refused(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.run_file.write_text("PARLEY_NATS_URL=x\nPARLEY_STACK_PID=999999999\n")
    with pytest.raises(StateDirError):
        state.admin_env()


def test_load_config_file_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "parley.toml"
    path.write_text('public_url = "https://chat.example.org/"\nport = 8443\n'
                    'tls_cert = "/c.pem"\ntls_key = "/k.pem"\n[env]\nPARLEY_ROOM_CAPACITY = "4"\n')
    cfg = load_config(path, {"port": None, "host": "10.0.0.1"})
    assert (cfg.public_url, cfg.effective_port(), cfg.host) == (
        "https://chat.example.org", 8443, "10.0.0.1")
    assert cfg.env == {"PARLEY_ROOM_CAPACITY": "4"}
    assert load_config(None).effective_port() == 8080


@pytest.mark.parametrize(("text", "message"), [
    ("port = 0", "port"), ("colour = 1", "colour"), ("[env]\nHOME = '/'", "PARLEY_"),
    ("public_url = 'chat'", "public_url"), ("port = ", "parley.toml"),
])
def test_load_config_invalid_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "parley.toml"
    path.write_text(text)
    with pytest.raises(ServeConfigError, match=message) as info:
        load_config(path)
    assert "\n" not in str(info.value).strip() or "Traceback" not in str(info.value)
    assert os.fspath(path) in str(info.value)


def test_load_config_relays(tmp_path: Path) -> None:
    path = tmp_path / "parley.toml"
    path.write_text("relays = 2\n")
    assert load_config(path).relays == 2
    assert load_config(None).relays == 1
    path.write_text("relays = 0\n")
    with pytest.raises(ServeConfigError, match="relays"):
        load_config(path)
