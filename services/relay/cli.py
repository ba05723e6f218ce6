"""`parley relay`: run the TURN relay; `parley relay probe`: test one through WebRTC."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .errors import RelayError

app = typer.Typer(
    help="The Parley TURN relay (RFC 8656 over UDP, TCP and TLS).",
    invoke_without_command=True,
    no_args_is_help=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _fail(exc: Exception, code: int) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code)


@app.callback()
def relay(
    ctx: typer.Context,
    listen: Annotated[
        str | None, typer.Option(help="UDP+TCP address HOST:PORT [env PARLEY_RELAY_LISTEN]")
    ] = None,
    relay_ip: Annotated[
        str | None, typer.Option(help="Address relayed sockets bind to [PARLEY_RELAY_RELAY_IP]")
    ] = None,
    public_host: Annotated[
        str | None, typer.Option(help="Address announced to rooms [PARLEY_RELAY_PUBLIC_HOST]")
    ] = None,
    public_port: Annotated[
        int | None,
        typer.Option(help="Port announced to rooms, if not the listen port (NodePort) "
                     "[PARLEY_RELAY_PUBLIC_PORT]"),
    ] = None,
    public_tcp_port: Annotated[
        int | None,
        typer.Option(help="TCP port announced, if not the UDP one [PARLEY_RELAY_PUBLIC_TCP_PORT]"),
    ] = None,
    ports: Annotated[
        str | None, typer.Option(help="Relayed port range LOW-HIGH [PARLEY_RELAY_PORTS]")
    ] = None,
    realm: Annotated[
        str | None, typer.Option(help="Authentication realm [PARLEY_RELAY_REALM]")
    ] = None,
    secret: Annotated[
        str | None, typer.Option(help="TURN REST shared secret [PARLEY_RELAY_SECRET]")
    ] = None,
    previous_secret: Annotated[
        str | None, typer.Option(help="Previous secret [PARLEY_RELAY_PREVIOUS_SECRET]")
    ] = None,
    secret_file: Annotated[
        Path | None, typer.Option(help="Secrets file, reread on SIGHUP [PARLEY_RELAY_SECRET_FILE]")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes, 0 = cores [PARLEY_RELAY_WORKERS]")
    ] = None,
    worker_port_base: Annotated[
        int | None,
        typer.Option(help="Worker k also listens alone on this port + k, for rooms to steer "
                     "one room to one worker [PARLEY_RELAY_WORKER_PORT_BASE]"),
    ] = None,
    allow_peer: Annotated[
        list[str] | None,
        typer.Option(help="CIDR opened to peers, repeatable [PARLEY_RELAY_ALLOW_PEER]"),
    ] = None,
    tls_listen: Annotated[
        str | None, typer.Option(help="TLS address HOST:PORT [PARLEY_RELAY_TLS_LISTEN]")
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="TLS certificate chain (PEM) [PARLEY_RELAY_TLS_CERT]")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="TLS private key (PEM) [PARLEY_RELAY_TLS_KEY]")
    ] = None,
    nats_url: Annotated[
        str | None, typer.Option(help="NATS URL; none = standalone [PARLEY_RELAY_NATS_URL]")
    ] = None,
    relay_id: Annotated[
        str | None, typer.Option(help="Id in heartbeats [PARLEY_RELAY_RELAY_ID]")
    ] = None,
    http_host: Annotated[
        str | None, typer.Option(help="Health/metrics host [PARLEY_RELAY_HTTP_HOST]")
    ] = None,
    http_port: Annotated[
        int | None, typer.Option(help="Health/metrics port, 0 = off [PARLEY_RELAY_HTTP_PORT]")
    ] = None,
    user_quota: Annotated[
        int | None, typer.Option(help="Allocations per username [PARLEY_RELAY_USER_QUOTA]")
    ] = None,
    total_quota: Annotated[
        int | None, typer.Option(help="Allocations per relay [PARLEY_RELAY_TOTAL_QUOTA]")
    ] = None,
    bandwidth: Annotated[
        int | None, typer.Option(help="Bytes/s per allocation, 0 = no cap [PARLEY_RELAY_BANDWIDTH]")
    ] = None,
    request_rate: Annotated[
        float | None, typer.Option(help="Requests/s per source IP [PARLEY_RELAY_REQUEST_RATE]")
    ] = None,
    rfc5766_channels: Annotated[
        bool | None,
        typer.Option(
            "--rfc5766-channels",
            help="Accept channels 0x5000-0x7FFF [PARLEY_RELAY_RFC5766_CHANNELS]",
        ),
    ] = None,
    local_delivery: Annotated[
        bool | None,
        typer.Option(
            "--local-delivery/--no-local-delivery",
            help="Relay between allocations of one worker in process [PARLEY_RELAY_LOCAL_DELIVERY]",
        ),
    ] = None,
    fastpath: Annotated[
        str | None,
        typer.Option(help="Compiled packet path: auto|off [PARLEY_RELAY_FASTPATH]"),
    ] = None,
    gso: Annotated[
        bool | None,
        typer.Option("--gso/--no-gso", help="UDP GSO on the compiled path [PARLEY_RELAY_GSO]"),
    ] = None,
    nonce_lifetime: Annotated[
        int | None, typer.Option(help="Nonce validity in s [PARLEY_RELAY_NONCE_LIFETIME]")
    ] = None,
    drain_deadline: Annotated[
        float | None, typer.Option(help="Seconds to drain on SIGTERM [PARLEY_RELAY_DRAIN_DEADLINE]")
    ] = None,
    heartbeat_interval: Annotated[
        float | None, typer.Option(help="Heartbeat period in s [PARLEY_RELAY_HEARTBEAT_INTERVAL]")
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(help="debug|info|warning|error [PARLEY_RELAY_LOG_LEVEL]")
    ] = None,
) -> None:
    """Run the relay in the foreground (SIGTERM drains, then exits 0)."""
    if ctx.invoked_subcommand is not None:
        return
    from .app import load_settings, run
    from .errors import ConfigError

    values = {k: v for k, v in ctx.params.items() if v is not None}
    if "allow_peer" in values and not values["allow_peer"]:
        del values["allow_peer"]
    try:
        settings = load_settings(**values)
        code = run(settings)
    except ConfigError as exc:
        _fail(exc, 2)
    except RelayError as exc:
        _fail(exc, 1)
    raise typer.Exit(code)


@app.command()
def probe(
    target: Annotated[str, typer.Argument(help="Relay HOST:PORT")],
    secret: Annotated[
        str, typer.Option(envvar="PARLEY_RELAY_SECRET", help="TURN REST shared secret")
    ],
    realm: Annotated[
        str, typer.Option(help="Realm (informational; the relay sends it)")
    ] = "parley",
    transport: Annotated[str, typer.Option(help="udp or tcp")] = "udp",
    timeout: Annotated[float, typer.Option(help="Seconds before giving up")] = 20.0,
    allocate_only: Annotated[bool, typer.Option(
        "--allocate-only", help="Only one TURN Allocate, released at once: the health check "
        "rooms runs on external TURN servers (works with any coturn).")] = False,
) -> None:
    """Connect two WebRTC peers through the relay (relay-only ICE); print setup time and RTT."""
    from .probe import ProbeError, run_allocate, run_probe

    if allocate_only:
        try:
            ms = run_allocate(target, secret=secret, transport=transport, timeout=timeout)
        except ProbeError as exc:
            _fail(exc, 1)
        typer.echo(f"ok: allocation in {ms:.0f} ms")
        return
    try:
        result = run_probe(target, secret=secret, transport=transport, timeout=timeout)
    except ProbeError as exc:
        _fail(exc, 1)
    typer.echo(
        f"ok: setup {result.setup_ms:.0f} ms, rtt {result.rtt_ms:.1f} ms via {result.candidate}"
    )


def main() -> None:
    """Entry point for `python -m services.relay`."""
    app(prog_name="parley relay")
    sys.exit(0)
