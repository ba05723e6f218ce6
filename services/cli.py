"""The `parley` command: run one service, or the whole stack for development (`parley dev`)."""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import Annotated, Any

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


DataDir = Annotated[Path | None, typer.Option(
    help="State dir: keys (parley.env, 0600), the running stack's addresses, JetStream "
    "files [env PARLEY_DATA_DIR; default ~/.local/state/parley].")]
PublicUrl = Annotated[str | None, typer.Option(
    help="Origin browsers use, e.g. https://chat.example.org [env PARLEY_PUBLIC_URL]; "
    "unset: URLs relative to each request.")]
TlsCert = Annotated[Path | None, typer.Option(
    help="PEM certificate chain: TLS on the public port and TURN over TLS.")]
TlsKey = Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")]
RelayHost = Annotated[str | None, typer.Option(
    "--relay-public-ip", "--relay-public-host",
    help="Address (or name) browsers reach the relay at; default: the address each "
    "request came in on.")]
ExitOnCrash = Annotated[bool, typer.Option(
    "--exit-on-crash",
    help="Stop the whole stack (exit 1) when a child dies, instead of restarting it.")]
RelayListen = Annotated[str | None, typer.Option(
    "--relay-host", help="Address the relay listens on (default: --host; 0.0.0.0 when "
    "nginx or Caddy holds the public port and --host is 127.0.0.1).")]


def _stack_or_fail(**kwargs: Any) -> None:
    from services.devstack import DevStack, DevStackError

    stack = DevStack(**kwargs)
    try:
        code = stack.run()
    except DevStackError as exc:
        _fail(str(exc), 1)
    raise typer.Exit(code)


def _public_url(value: str | None) -> str:
    from services.common.publicurl import parse_public_url

    try:
        return parse_public_url(value if value is not None
                                else os.environ.get("PARLEY_PUBLIC_URL", ""))
    except ValueError as exc:
        _fail(f"--public-url: {exc}")
    return ""


@app.command()
def dev(
    port: Annotated[int, typer.Option(min=1, max=65535, help="The public (web) port.")] = 8080,
    host: Annotated[str, typer.Option(
        help="Address of the public port and the relay (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    signaling_replicas: Annotated[
        int, typer.Option(min=0, max=8, help="Signalling processes to start.")
    ] = 1,
    relay: Annotated[bool, typer.Option(help="Start a TURN relay.")] = True,
    relays: Annotated[int, typer.Option(
        min=1, max=8, help="TURN relays to start, each with its own ports and id "
        "(children relay-1 … relay-N when more than one).")] = 1,
    force_relay: Annotated[bool, typer.Option(help="Make every call go through TURN.")] = False,
    data_dir: DataDir = None,
    public_url: PublicUrl = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    relay_public_ip: RelayHost = None,
    relay_host: RelayListen = None,
    sfus: Annotated[int, typer.Option(
        min=0, max=4, help="SFU processes (rooms past PARLEY_MESH_MAX go through one).")] = 1,
    relay_port: Annotated[int | None, typer.Option(
        min=1, max=65535, help="Relay UDP/TCP port (default: a free one).")] = None,
    relay_tls_port: Annotated[int | None, typer.Option(
        min=1, max=65535, help="Relay TLS port, with --tls-cert (default: a free one).")] = None,
    exit_on_crash: ExitOnCrash = False,
    external_turn: Annotated[str | None, typer.Option(
        help="Use an existing TURN server (coturn with use-auth-secret) instead of the "
        "built-in relay: its URL, e.g. 'turn:turn.example.org:3478?transport=udp' (several "
        "URLs of one server separated by spaces).")] = None,
    external_turn_secret: Annotated[str | None, typer.Option(
        envvar="PARLEY_EXTERNAL_TURN_SECRET", show_default=False,
        help="The --external-turn server's static-auth-secret [env "
        "PARLEY_EXTERNAL_TURN_SECRET: better than argv, which `ps` shows].")] = None,
) -> None:
    """Start NATS, Redis and every service as separate processes behind one port, restart
    any that dies; Ctrl-C stops them all."""
    if (tls_cert is None) != (tls_key is None):
        _fail("--tls-cert and --tls-key go together")
    if external_turn is not None:
        from services.rooms.turnservers import split_server

        try:
            split_server(external_turn)
        except ValueError as exc:
            _fail(f"--external-turn: {exc}")
        if not external_turn_secret:
            _fail("--external-turn needs its secret: --external-turn-secret or "
                  "PARLEY_EXTERNAL_TURN_SECRET")
    _stack_or_fail(
        host=host, port=port, signaling_replicas=signaling_replicas, relay=relay,
        relays=relays, force_relay=force_relay, data_dir=data_dir,
        public_url=_public_url(public_url),
        tls_cert=tls_cert, tls_key=tls_key, relay_public_host=relay_public_ip,
        relay_host=relay_host, relay_port=relay_port, relay_tls_port=relay_tls_port,
        exit_on_crash=exit_on_crash, external_turn=external_turn,
        external_turn_secret=external_turn_secret, sfus=sfus,
    )


@app.command()
def serve(
    config: Annotated[Path | None, typer.Option(
        help="parley.toml [env PARLEY_CONFIG; else /etc/parley/parley.toml, else "
        "<data dir>/parley.toml].")] = None,
    port: Annotated[int | None, typer.Option(
        min=1, max=65535, help="The public port [443 with TLS, else 8080].")] = None,
    host: Annotated[str | None, typer.Option(
        help="Address of the public port and the relay [0.0.0.0].")] = None,
    data_dir: DataDir = None,
    public_url: PublicUrl = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    relay_public_ip: RelayHost = None,
    relay_host: RelayListen = None,
    exit_on_crash: ExitOnCrash = False,
) -> None:
    """The single-server deployment: `parley dev` with settings from parley.toml, fixed
    relay ports (3478, TLS 5349), and metrics and the diagnostic log kept on disk."""
    from services.serveconfig import ServeConfigError, find_config, load_config
    from services.statedir import default_dir

    try:
        cfg = load_config(find_config(config, data_dir or default_dir()), {
            "port": port, "host": host, "data_dir": data_dir, "public_url": public_url,
            "tls_cert": tls_cert, "tls_key": tls_key, "relay_public_host": relay_public_ip,
            "relay_host": relay_host})
    except ServeConfigError as exc:
        _fail(str(exc))
        return
    if (cfg.tls_cert is None) != (cfg.tls_key is None):
        _fail("tls_cert and tls_key go together")
    _stack_or_fail(
        host=cfg.host, port=cfg.effective_port(), signaling_replicas=cfg.signaling_replicas,
        relay=cfg.relay, relays=cfg.relays, force_relay=cfg.force_relay, data_dir=cfg.data_dir,
        public_url=cfg.public_url or _public_url(None), tls_cert=cfg.tls_cert,
        tls_key=cfg.tls_key, relay_public_host=cfg.relay_public_host,
        relay_host=cfg.relay_host,
        relay_port=cfg.relay_port, relay_tls_port=cfg.relay_tls_port, keep_jetstream=True,
        extra_env=cfg.env, name="parley serve", exit_on_crash=exit_on_crash,
        sfus=0,  # not yet: a server's SFU needs a fixed, opened UDP port (docs/sfu.md)
    )


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
_register_optional("services.sfu.cli", "sfu")
_register_optional("services.metrics.cli", "metrics")
_register_optional("services.logpurge.cli", "logpurge")
_register_optional("services.gateway.cli", "gateway")
_register_optional("parley_operator.cli", "operator")


def main() -> None:
    """Console-script entry point."""
    app(prog_name="parley")


if __name__ == "__main__":
    main()
