"""The single-server stack's state dir: its keys and the address of the running stack.

`parley dev` and `parley serve` keep everything an admin command needs in one folder
(`--data-dir`, `PARLEY_DATA_DIR`, else `$XDG_STATE_HOME/parley`, else
`~/.local/state/parley`), so that `parley logpurge status|lookup|erase` work against the
running stack with no flags:

- `parley.env`: the stack's secrets (join-token key, hash key, TURN secret, metrics API
  key), made once and kept across restarts, so that records written yesterday can still be
  looked up and erased today. Owner-only (0600), in an owner-only folder (0700).
- `run.env`: the NATS and Redis URLs and the pid of the stack running now; written at
  start, removed at stop.
- `nats/`: JetStream's files when the stack keeps them on disk (`parley serve`).
- `run/<pid>/`: the running stack's NATS and Redis folders (`services.devstack`); removed
  at stop, and by the next start when that stack was killed.

Both files are `KEY=value` lines; values never contain newlines.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Final

KEYS_FILE: Final[str] = "parley.env"
RUN_FILE: Final[str] = "run.env"
# Secrets the stack makes when neither the environment nor parley.env has them.
GENERATED: Final[tuple[str, ...]] = (
    "PARLEY_TOKEN_KEY", "PARLEY_HASH_KEY", "PARLEY_TURN_SECRET", "PARLEY_METRICS_API_KEYS",
)


class StateDirError(RuntimeError):
    """The state dir cannot be used; the message says which file and why."""


def default_dir(env: Mapping[str, str] | None = None) -> Path:
    """`PARLEY_DATA_DIR`, else `$XDG_STATE_HOME/parley`, else `~/.local/state/parley`."""
    env = os.environ if env is None else env
    if env.get("PARLEY_DATA_DIR"):
        return Path(env["PARLEY_DATA_DIR"]).expanduser()
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "parley"


def parse_env(text: str) -> dict[str, str]:
    """`KEY=value` lines (blank lines and `#` comments skipped; no quoting)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def format_env(values: Mapping[str, str], header: str) -> str:
    """The file text for `values`; refuses a value that would break the line format."""
    lines = [f"# {header}"]
    for key, value in values.items():
        if "\n" in value or "\r" in value:
            raise StateDirError(f"{key} contains a line break")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, atomically (never briefly world-readable)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class StateDir:
    """One stack's state folder."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = (path or default_dir()).expanduser().resolve()

    @property
    def keys_file(self) -> Path:
        return self.path / KEYS_FILE

    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    def ensure(self) -> None:
        """Create the folder (0700) if needed; refuse one that others can read."""
        try:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StateDirError(f"cannot create {self.path}: {exc.strerror}") from exc
        mode = self.path.stat().st_mode & 0o077
        if mode:
            os.chmod(self.path, 0o700)

    def keys(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The stack's secrets: from `env` where set, else parley.env, else made now.

        What was made or taken from `env` is saved to parley.env (0600), so the next run
        and the admin commands use the same keys.
        """
        env = os.environ if env is None else env
        self.ensure()
        saved = self.read(self.keys_file)
        merged = dict(saved)
        for name in GENERATED:
            value = env.get(name) or saved.get(name) or secrets.token_urlsafe(32)
            merged[name] = value
        if merged != saved:
            _write_private(self.keys_file, format_env(
                merged, "Parley's keys (made by parley dev/serve); keep private, back up"))
        os.chmod(self.keys_file, 0o600)
        return merged

    def write_run(self, values: Mapping[str, str]) -> None:
        """Record the running stack (NATS/Redis URLs, pid) for the admin commands."""
        self.ensure()
        _write_private(self.run_file, format_env(
            {**values, "PARLEY_STACK_PID": str(os.getpid())},
            "The running Parley stack (removed when it stops)"))

    def clear_run(self) -> None:
        """Forget the running stack, if this process is the one recorded."""
        run = self.read(self.run_file)
        if run.get("PARLEY_STACK_PID") == str(os.getpid()):
            with contextlib.suppress(OSError):
                self.run_file.unlink()

    @staticmethod
    def read(path: Path) -> dict[str, str]:
        """A `KEY=value` file, or {} if it does not exist."""
        try:
            return parse_env(path.read_text())
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StateDirError(f"cannot read {path}: {exc.strerror}") from exc

    def admin_env(self) -> dict[str, str]:
        """What an admin command needs to reach the running stack: keys and URLs.

        Raises:
            StateDirError: no stack is running from this folder.
        """
        run = self.read(self.run_file)
        pid = run.pop("PARLEY_STACK_PID", "")
        if not run or not _alive(pid):
            raise StateDirError(
                f"no running Parley stack found in {self.path} (start `parley dev` or "
                "`parley serve`, or point PARLEY_DATA_DIR / --data-dir at its folder)")
        return {**self.read(self.keys_file), **run}


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def load_admin_env(data_dir: Path | None = None) -> None:
    """Fill `os.environ` from the running stack's state dir, where not already set.

    Does nothing when PARLEY_HASH_KEY and PARLEY_NATS_URL are both set (a cluster, or
    explicit settings win).
    """
    if os.environ.get("PARLEY_HASH_KEY") and os.environ.get("PARLEY_NATS_URL"):
        return
    for key, value in StateDir(data_dir).admin_env().items():
        os.environ.setdefault(key, value)
