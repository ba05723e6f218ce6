"""The gateway's asyncio shell: HTTP/1.1 (h11) in, one upstream connection per request out.

Keep-alive towards the browser, a fresh loopback connection per request towards the
service (cheap on loopback, and no upstream pool to get wrong). A websocket handshake is
forwarded as it came and the two sockets are then spliced byte for byte. Limits: request
head 64 KiB (431), body `max_body` (413), `head_timeout` to send a request head (also the
keep-alive idle time), `upstream_timeout` per upstream read, a cap on open connections.
An upstream that refuses (a process restarting) passes the request to the next one; when
every one refuses, the request waits up to `restart_wait` for one to come back, trying
again every `RETRY_EVERY` s, and only then gets a 502.
Nothing is logged about a request but its failure's type: no address, no path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass
from typing import Final

import h11

from services.gateway.routing import (
    Route,
    RouteTable,
    forwarded_headers,
    is_trusted,
    is_websocket,
    response_headers,
)

log = logging.getLogger(__name__)

MAX_HEAD: Final[int] = 64 * 1024
READ_CHUNK: Final[int] = 64 * 1024
TUNNEL_IDLE: Final[float] = 300.0
CLOSE_GRACE: Final[float] = 5.0
RETRY_EVERY: Final[float] = 0.1  # s between rounds while every upstream refuses


@dataclass(frozen=True)
class Limits:
    """Size limits and timeouts of the gateway."""

    max_body: int = 1 << 20
    head_timeout: float = 30.0
    upstream_timeout: float = 60.0
    connect_timeout: float = 5.0
    restart_wait: float = 5.0  # s a request waits while every upstream refuses
    max_connections: int = 2048


class _Closed(Exception):
    """The client went away."""


class Gateway:
    """One listening socket in front of the route table."""

    def __init__(self, table: RouteTable, *, trusted: list[str], limits: Limits | None = None,
                 tls: ssl.SSLContext | None = None) -> None:
        self.table = table
        self.trusted = trusted
        self.limits = limits or Limits()
        self.tls = tls
        self._open = 0

    async def start(self, host: str, port: int) -> asyncio.Server:
        """Listen on (host, port); returns the server (close it to stop)."""
        return await asyncio.start_server(
            self._handle, host, port, ssl=self.tls, limit=MAX_HEAD, backlog=1024,
            ssl_handshake_timeout=10.0 if self.tls else None)

    # --- one client connection ---------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self.limits.max_connections:
            writer.close()
            return
        self._open += 1
        try:
            await self._serve(reader, writer)
        except (_Closed, ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        except Exception as exc:  # never a traceback per request; the type says enough
            log.warning("gateway connection failed: %s", type(exc).__name__)
        finally:
            self._open -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        peer = (writer.get_extra_info("peername") or ("", 0))[0]
        local = (writer.get_extra_info("sockname") or ("", 0))[0]
        trusted = is_trusted(peer, self.trusted)
        while True:
            try:
                event = await self._next(conn, reader, self.limits.head_timeout)
            except h11.RemoteProtocolError as exc:
                await self._refuse(conn, writer, exc.error_status_hint, "bad request")
                return
            except TimeoutError:
                return
            if isinstance(event, h11.ConnectionClosed):
                return
            if not isinstance(event, h11.Request):
                return
            headers = list(event.headers.raw_items())
            if len(event.target) + sum(len(k) + len(v) + 4 for k, v in headers) > MAX_HEAD:
                # h11 caps only a head still arriving; one that came whole is checked here
                await self._refuse(conn, writer, 431, "request header fields too large")
                return
            route = self.table.match(event.target)
            if route is None:
                await self._refuse(conn, writer, 404, "not found")
                return
            if is_websocket(headers) and event.method == b"GET":
                await self._tunnel(conn, reader, writer, event, route,
                                   forwarded_headers(headers, peer=peer, local=local,
                                                     tls=self.tls is not None,
                                                     trusted_peer=trusted, websocket=True))
                return
            ok = await self._forward(conn, reader, writer, event, route, forwarded_headers(
                headers, peer=peer, local=local, tls=self.tls is not None, trusted_peer=trusted))
            if not ok or conn.our_state is h11.MUST_CLOSE:
                return
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _next(self, conn: h11.Connection, reader: asyncio.StreamReader,
                    wait: float) -> object:
        """The next h11 event, reading as needed; TimeoutError after `wait` s of silence."""
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await asyncio.wait_for(reader.read(READ_CHUNK), wait)
            conn.receive_data(data)

    async def _refuse(self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int,
                      text: str) -> None:
        """A short plain-text error answer, then the connection closes."""
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = f"{status} {text}\n".encode()
        with contextlib.suppress(h11.LocalProtocolError):
            writer.write(conn.send(h11.Response(status_code=status, headers=[
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()), (b"connection", b"close")])))
            writer.write(conn.send(h11.Data(data=body)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()

    async def _connect(self, route: Route) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection to the route's next upstream; one that refuses (a signalling replica
        that died and is not back yet) passes the request to the next one. When all refuse
        (the only replica, or every one, restarting), try again every RETRY_EVERY s for up to
        `restart_wait` s: the request is served as soon as one is back, rather than failing
        and leaving the client to its own, slower, backoff."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.restart_wait
        while True:
            for _ in range(len(route.upstreams)):
                host, _, port = route.next_upstream().rpartition(":")
                try:
                    return await asyncio.wait_for(
                        asyncio.open_connection(host.strip("[]"), int(port), limit=MAX_HEAD),
                        self.limits.connect_timeout)
                except ConnectionRefusedError:
                    continue
            if loop.time() + RETRY_EVERY > deadline:
                raise ConnectionRefusedError("every upstream refused")
            await asyncio.sleep(RETRY_EVERY)

    # --- plain HTTP ----------------------------------------------------------------------

    async def _forward(self, conn: h11.Connection, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter, request: h11.Request, route: Route,
                       headers: list[tuple[bytes, bytes]]) -> bool:
        """Send one request upstream and its answer back; False: close the client."""
        declared = request.headers
        for key, value in declared.raw_items():
            if key.lower() == b"content-length" and int(value) > self.limits.max_body:
                await self._refuse(conn, writer, 413, "request body too large")
                return False
        try:
            up_reader, up_writer = await self._connect(route)
        except (OSError, TimeoutError):
            await self._refuse(conn, writer, 502, "service unavailable")
            return False
        try:
            return await self._exchange(conn, reader, writer, request, headers,
                                        up_reader, up_writer)
        finally:
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()

    async def _exchange(self, conn: h11.Connection, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter, request: h11.Request,
                        headers: list[tuple[bytes, bytes]], up_reader: asyncio.StreamReader,
                        up_writer: asyncio.StreamWriter) -> bool:
        up = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        up_writer.write(up.send(h11.Request(method=request.method, target=request.target,
                                            headers=headers)))
        sent = 0
        while True:  # the request body
            try:
                event = await self._next(conn, reader, self.limits.head_timeout)
            except h11.RemoteProtocolError as exc:
                await self._refuse(conn, writer, exc.error_status_hint, "bad request")
                return False
            if isinstance(event, h11.Data):
                sent += len(event.data)
                if sent > self.limits.max_body:
                    await self._refuse(conn, writer, 413, "request body too large")
                    return False
                up_writer.write(up.send(event))
                await up_writer.drain()
            elif isinstance(event, h11.EndOfMessage):
                up_writer.write(up.send(h11.EndOfMessage()))
                await up_writer.drain()
                break
            else:
                raise _Closed
        while True:  # the response
            try:
                answer = await self._next(up, up_reader, self.limits.upstream_timeout)
            except (h11.RemoteProtocolError, TimeoutError):
                await self._refuse(conn, writer, 502, "bad answer from the service")
                return False
            if isinstance(answer, h11.InformationalResponse):
                writer.write(conn.send(h11.InformationalResponse(
                    status_code=answer.status_code, headers=response_headers(
                        list(answer.headers.raw_items())))))
            elif isinstance(answer, h11.Response):
                writer.write(conn.send(h11.Response(
                    status_code=answer.status_code, reason=answer.reason,
                    headers=response_headers(list(answer.headers.raw_items())))))
            elif isinstance(answer, h11.Data):
                writer.write(conn.send(h11.Data(data=answer.data)))
                await writer.drain()
            elif isinstance(answer, h11.EndOfMessage):
                writer.write(conn.send(h11.EndOfMessage()))
                await writer.drain()
                return True
            else:  # the service closed mid-answer
                if conn.our_state is h11.SEND_RESPONSE:
                    await self._refuse(conn, writer, 502, "bad answer from the service")
                return False

    # --- websockets ----------------------------------------------------------------------

    async def _tunnel(self, conn: h11.Connection, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter, request: h11.Request, route: Route,
                      headers: list[tuple[bytes, bytes]]) -> None:
        """Forward a websocket handshake as it came, then splice both ways until one ends."""
        try:
            for _ in range(3):  # EndOfMessage (a handshake has no body), then PAUSED
                if conn.next_event() in (h11.PAUSED, h11.NEED_DATA):
                    break
        except h11.RemoteProtocolError:
            await self._refuse(conn, writer, 400, "bad request")
            return
        try:
            up_reader, up_writer = await self._connect(route)
        except (OSError, TimeoutError):
            await self._refuse(conn, writer, 502, "service unavailable")
            return
        head = [request.method + b" " + request.target + b" HTTP/1.1"]
        head += [k + b": " + v for k, v in headers]
        up_writer.write(b"\r\n".join(head) + b"\r\n\r\n" + conn.trailing_data[0])
        pipes = {asyncio.ensure_future(_pipe(reader, up_writer)),
                 asyncio.ensure_future(_pipe(up_reader, writer))}
        try:
            _, pending = await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            if pending:  # one side ended: let the other finish its close, briefly
                _, pending = await asyncio.wait(pending, timeout=CLOSE_GRACE)
        finally:
            for task in pipes:
                task.cancel()
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    """Copy bytes until EOF or TUNNEL_IDLE seconds of silence, then half-close `dst`."""
    try:
        while True:
            data = await asyncio.wait_for(src.read(READ_CHUNK), TUNNEL_IDLE)
            if not data:
                break
            dst.write(data)
            await dst.drain()
    except (ConnectionError, TimeoutError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if dst.can_write_eof():
                dst.write_eof()
            else:
                dst.close()
