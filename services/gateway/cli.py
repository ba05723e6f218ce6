"""`parley gateway`: the single-server stack's one public port (started by `parley dev`)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import ssl
from pathlib import Path
from typing import Annotated

import typer

from services.common.logs import setup_logging
from services.common.serve import fail
from services.gateway.proxy import Gateway, Limits
from services.gateway.routing import RouteTable, parse_route

app = typer.Typer(help=__doc__, add_completion=False, pretty_exceptions_enable=False,
                  invoke_without_command=True)
log = logging.getLogger("services.gateway")
LOOPBACK = ["127.0.0.0/8", "::1/128"]


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2+) from PEM files; ValueError says what is wrong."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load --tls-cert/--tls-key: {exc}") from exc
    return ctx


async def _run(gateway: Gateway, host: str, port: int) -> None:
    server = await gateway.start(host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("gateway listening (%s)", "https" if gateway.tls else "http")
    async with server:
        await stop.wait()
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 5.0)


@app.callback()
def gateway(
    listen: Annotated[str, typer.Option(help="HOST:PORT to listen on.")] = "127.0.0.1:8080",
    route: Annotated[list[str], typer.Option(
        help="/PREFIX=HOST:PORT[,HOST:PORT] (repeat; longest prefix wins).")] = [],  # noqa: B006
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate chain.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key.")] = None,
    trusted_proxy: Annotated[list[str], typer.Option(
        help="CIDR whose X-Forwarded-* headers are kept (default: loopback).")] = [],  # noqa: B006
    max_body: Annotated[int, typer.Option(
        min=1024, help="Largest request body (bytes).")] = 1 << 20,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve rooms, signalling and metrics on one port, routed by path like the Ingress."""
    setup_logging(log_level, json_lines=False, service="gateway")
    try:
        table = RouteTable(parse_route(r) for r in route)
        host, _, port_text = listen.rpartition(":")
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"--listen: expected HOST:PORT, got {listen!r}")
        for cidr in trusted_proxy:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"--trusted-proxy: not a CIDR: {cidr!r}") from None
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together")
        ctx = tls_context(tls_cert, tls_key) if tls_cert and tls_key else None
    except ValueError as exc:
        fail(str(exc))
        return
    if not table.routes:
        fail("no --route given")
    gw = Gateway(table, trusted=trusted_proxy or LOOPBACK, limits=Limits(max_body=max_body),
                 tls=ctx)
    try:
        asyncio.run(_run(gw, host.strip("[]") or "0.0.0.0", int(port_text)))
    except OSError as exc:
        fail(f"cannot listen on {listen}: {exc.strerror}", 1)
