"""`parley sfu`: run the selective forwarding unit."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .errors import ConfigError, SfuError

app = typer.Typer(help="The Parley SFU (forwards RTP, never decodes).",
                  invoke_without_command=True, no_args_is_help=False, rich_markup_mode=None,
                  pretty_exceptions_enable=False, add_completion=False)


def _fail(exc: Exception, code: int) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code)


@app.callback()
def sfu(
    ctx: typer.Context,
    id: Annotated[str | None, typer.Option(
        "--id", help="Subject token of this SFU [PARLEY_SFU_ID]")] = None,
    listen: Annotated[str | None, typer.Option(
        help="UDP address HOST:PORT [PARLEY_SFU_LISTEN]")] = None,
    public_host: Annotated[str | None, typer.Option(
        help="Address in the answers' candidate [PARLEY_SFU_PUBLIC_HOST]")] = None,
    public_port: Annotated[int | None, typer.Option(
        help="Port in the candidate, if not the listen port [PARLEY_SFU_PUBLIC_PORT]")] = None,
    http_host: Annotated[str | None, typer.Option(
        help="Health/metrics host [PARLEY_SFU_HTTP_HOST]")] = None,
    http_port: Annotated[int | None, typer.Option(
        help="Health/metrics port, 0 = off [PARLEY_SFU_HTTP_PORT]")] = None,
    drain_deadline: Annotated[float | None, typer.Option(
        help="Seconds calls may go on after SIGTERM [PARLEY_SFU_DRAIN_DEADLINE]")] = None,
    max_peers: Annotated[int | None, typer.Option(
        help="PeerConnections accepted [PARLEY_SFU_MAX_PEERS]")] = None,
    heartbeat_interval: Annotated[float | None, typer.Option(
        help="Heartbeat period in s [PARLEY_SFU_HEARTBEAT_INTERVAL]")] = None,
    log_level: Annotated[str | None, typer.Option(
        help="debug|info|warning|error [PARLEY_SFU_LOG_LEVEL]")] = None,
) -> None:
    """Run the SFU in the foreground (SIGTERM drains, then exits 0). The NATS URL is read
    from PARLEY_SFU_NATS_URL only (argv shows in `ps`)."""
    if ctx.invoked_subcommand is not None:
        return
    from .app import load_settings, run

    values = {k: v for k, v in ctx.params.items() if v is not None}
    try:
        code = run(load_settings(**values))
    except ConfigError as exc:
        _fail(exc, 2)
    except SfuError as exc:
        _fail(exc, 1)
    raise typer.Exit(code)


def main() -> None:
    """Entry point for `python -m services.sfu`."""
    app(prog_name="parley sfu")
    sys.exit(0)
