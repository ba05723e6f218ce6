"""The `parley` command: run one service, or the whole stack for development (`parley dev`)."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Annotated

import typer

from services.common.serve import fail, run_service

app = typer.Typer(
    name="parley",
    help="Parley: simple, private video chat. Run a service, or `parley dev` for all of them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(message: str, code: int = 2) -> None:
    fail(message, code)


Host = Annotated[str | None, typer.Option(help="Address to listen on [env PARLEY_HOST].")]
Port = Annotated[
    int | None, typer.Option(min=1, max=65535, help="Port to listen on [env PARLEY_PORT].")
]


@app.command()
def rooms(host: Host = None, port: Port = None) -> None:
    """Run the rooms service (room API, join tokens, ICE servers, web client)."""
    from services.rooms.app import create_app
    from services.rooms.settings import RoomsSettings

    run_service(RoomsSettings, create_app, host=host, port=port)


@app.command()
def signaling(host: Host = None, port: Port = None) -> None:
    """Run the signalling service (websocket signalling, fan-out over NATS)."""
    from services.signaling.app import create_app, uvicorn_options
    from services.signaling.settings import SignalingSettings

    # the signalling service's own uvicorn options: sans-I/O websockets, no deflate, limits
    run_service(SignalingSettings, create_app, host=host, port=port,
                uvicorn_options=uvicorn_options)


@app.command()
def dev(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Web port.")] = 8080,
    host: Annotated[str, typer.Option(help="Address the services listen on.")] = "127.0.0.1",
    signaling_replicas: Annotated[
        int, typer.Option(min=0, max=8, help="Signalling processes to start.")
    ] = 1,
    relay: Annotated[bool, typer.Option(help="Start a TURN relay.")] = True,
    force_relay: Annotated[bool, typer.Option(help="Make every call go through TURN.")] = False,
) -> None:
    """Start NATS, Redis and every service as separate processes; Ctrl-C stops them all."""
    from services.devstack import DevStack, DevStackError

    stack = DevStack(
        host=host, port=port, signaling_replicas=signaling_replicas, relay=relay,
        force_relay=force_relay,
    )
    try:
        code = stack.run()
    except DevStackError as exc:
        _fail(str(exc), 1)
    raise typer.Exit(code)


def _register_optional(module: str, name: str) -> None:
    """Add a service's own typer app (e.g. the relay's) when that service is built."""
    try:
        if importlib.util.find_spec(module) is None:
            return
    except ModuleNotFoundError:
        return
    sub = importlib.import_module(module).app
    app.add_typer(sub, name=name)


_register_optional("services.relay.cli", "relay")
_register_optional("services.metrics.cli", "metrics")
_register_optional("services.logpurge.cli", "logpurge")
_register_optional("services.gateway.cli", "gateway")
_register_optional("parley_operator.cli", "operator")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="parley")


if __name__ == "__main__":
    main()
