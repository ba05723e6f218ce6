"""`parley logpurge`: run the service, or one purge, status, erase and lookup from a shell."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from services.common.access import redact_url
from services.common.settings import SettingsError

app = typer.Typer(help="The diagnostic log's purger (retention, erasure, audit).",
                  invoke_without_command=True, add_completion=False)
T = TypeVar("T")
_data_dir: list[Path | None] = [None]


def _find_stack() -> None:
    """Without PARLEY_HASH_KEY/PARLEY_NATS_URL, take them from the running single-server
    stack's state dir (`services.statedir`); a cluster's explicit settings win."""
    from services.statedir import StateDirError, load_admin_env

    try:
        load_admin_env(_data_dir[0])
    except StateDirError as exc:
        if not os.environ.get("PARLEY_HASH_KEY"):
            typer.echo(f"parley: PARLEY_HASH_KEY is not set, and {exc}", err=True)
            raise typer.Exit(2) from None


def _settings() -> Any:
    from services.common.serve import load_settings
    from services.logpurge.settings import LogpurgeSettings

    return load_settings(LogpurgeSettings)


def _with_store(fn: Callable[[Any], Awaitable[T]]) -> T:
    from services.common.bus import NatsBus
    from services.common.diaglog import DiagLog
    from services.logpurge.store import DiagStore

    _find_stack()
    s = _settings()
    try:
        hash_key = s.require("hash_key")
    except SettingsError as exc:
        typer.echo(f"parley: {exc}", err=True)
        raise typer.Exit(2) from None

    async def go() -> T:
        try:
            bus = await NatsBus.connect(s.nats_url, name="logpurge-cli", connect_timeout=3)
        except Exception as exc:
            typer.echo(f"parley: cannot reach NATS at {redact_url(s.nats_url)}: "
                       f"{type(exc).__name__}", err=True)
            raise typer.Exit(1) from None
        try:
            diag = DiagLog(bus.js, hash_key=hash_key, retention_days=s.retention_days,
                           purge_interval=s.logpurge_interval)
            store = DiagStore(bus, diag, hash_key=hash_key, retention_days=s.retention_days,
                              clock_skew=s.logpurge_clock_skew)
            await store.ensure()
            return await fn(store)
        finally:
            await bus.close()

    return asyncio.run(go())


@app.callback()
def main(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Admin/health address.")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Admin/health port.")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="State dir of a running `parley dev`/`parley serve` (default: PARLEY_DATA_DIR, "
        "else ~/.local/state/parley); used when PARLEY_HASH_KEY is not set.")] = None,
) -> None:
    """Run logpurge: a purge every PARLEY_LOGPURGE_INTERVAL seconds (default 1 h)."""
    _data_dir[0] = data_dir
    if ctx.invoked_subcommand is not None:
        return
    from services.common.serve import run_service
    from services.logpurge.app import create_app
    from services.logpurge.settings import LogpurgeSettings

    run_service(LogpurgeSettings, create_app, host=host, port=port)


@app.command("run-once")
def run_once() -> None:
    """One purge cycle (for a CronJob); prints what it removed as JSON."""
    result = _with_store(lambda st: st.purge())
    typer.echo(json.dumps({"removed": result.removed, "keys_destroyed": result.keys_destroyed}))


@app.command()
def status() -> None:
    """Record count, oldest record age, last purge."""
    st = _with_store(lambda s: s.status())
    now = time.time()
    typer.echo(json.dumps({
        "records": st.records,
        "oldest_record_age_seconds": None if st.oldest_at is None else round(now - st.oldest_at),
        "last_purge_age_seconds": None if st.last_purge_at is None
        else round(now - st.last_purge_at),
    }))


@app.command()
def erase(
    ip: Annotated[str | None, typer.Option(help="Erase every record of this IP address.")] = None,
    room: Annotated[str | None, typer.Option(help="Erase every record of this room.")] = None,
) -> None:
    """Erase one IP's or one room's records at once; prints how many were removed."""
    from services.common.roomnames import RoomNameError, normalize

    if (ip is None) == (room is None):
        typer.echo("parley: give exactly one of --ip or --room", err=True)
        raise typer.Exit(2)
    if room is not None:
        try:
            room = normalize(room)
        except RoomNameError as exc:
            typer.echo(f"parley: --room: {exc}", err=True)
            raise typer.Exit(2) from None
    removed = _with_store(lambda st: st.erase(ip=ip, room=room))
    typer.echo(json.dumps({"removed": removed}))


@app.command()
def lookup(room: Annotated[str, typer.Option(help="The room whose records to read.")]) -> None:
    """Print the records kept for one room, one JSON object per line."""
    from services.common.roomnames import RoomNameError, normalize

    try:
        name = normalize(room)
    except RoomNameError as exc:
        typer.echo(f"parley: --room: {exc}", err=True)
        raise typer.Exit(2) from None
    for record in _with_store(lambda st: st.lookup(room=name)):
        typer.echo(record.model_dump_json())
