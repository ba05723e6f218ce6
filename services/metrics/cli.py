"""`parley metrics`: run the metrics service (beacon ingest, aggregator, reports)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from services.common.settings import SettingsError

app = typer.Typer(help="Anonymous usage metrics: beacons in, k-anonymous reports out.",
                  invoke_without_command=True, add_completion=False)


@app.callback()
def main(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port to listen on.")] = None,
) -> None:
    """Run the metrics service (env PARLEY_METRICS_*; see docs/metrics.md)."""
    if ctx.invoked_subcommand is not None:
        return
    from pydantic import ValidationError

    from services.cli import _serve
    from services.metrics.app import create_app
    from services.metrics.settings import MetricsSettings

    overrides: dict[str, Any] = {k: v for k, v in {"host": host, "port": port}.items() if v}
    try:
        settings = MetricsSettings(**overrides)
        application = create_app(settings)
    except SettingsError as exc:
        typer.echo(f"parley: {exc}", err=True)
        raise typer.Exit(2) from None
    except ValidationError as exc:
        typer.echo(f"parley: invalid metrics settings: {exc}", err=True)
        raise typer.Exit(2) from None
    _serve(application, settings.host, settings.port)


@app.command("make-key")
def make_key() -> None:
    """Print a new random API key (add it to PARLEY_METRICS_API_KEYS)."""
    import secrets

    typer.echo(secrets.token_urlsafe(32))


@app.command()
def aggregate() -> None:
    """Run only the aggregator (for PARLEY_METRICS_AGGREGATE=false ingest replicas)."""
    import asyncio
    import signal

    from services.metrics.app import run_aggregator_only
    from services.metrics.settings import MetricsSettings

    try:
        settings = MetricsSettings()
    except SettingsError as exc:
        typer.echo(f"parley: {exc}", err=True)
        raise typer.Exit(2) from None

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_aggregator_only(settings, stop)

    asyncio.run(go())
