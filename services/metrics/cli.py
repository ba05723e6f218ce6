"""`parley metrics`: run the metrics service (beacon ingest, aggregator, reports)."""

from __future__ import annotations

from typing import Annotated

import typer


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
    from services.common.serve import run_service
    from services.metrics.app import create_app
    from services.metrics.settings import MetricsSettings

    run_service(MetricsSettings, create_app, host=host, port=port)


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

    from services.common.serve import load_settings
    from services.metrics.app import run_aggregator_only
    from services.metrics.settings import MetricsSettings

    settings = load_settings(MetricsSettings)

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_aggregator_only(settings, stop)

    asyncio.run(go())
