"""A small OTLP/HTTP trace receiver for tests: the official protobuf definitions
(`opentelemetry-proto`) over a real socket, as an OpenTelemetry Collector would receive.

`OtlpReceiver().start()` listens on a free loopback port; services export to its
`endpoint` (`OTEL_EXPORTER_OTLP_ENDPOINT`); `spans()` is every span received so far, with
its resource's service name and every attribute (span, event, link, resource) as text.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from services.common.infra import free_port

MAX_BODY = 8 << 20


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the receiver decoded it (ids in hex, as in a traceparent)."""

    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    texts: tuple[str, ...] = field(default=())  # every exported string: attributes, events, status


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, which) if which else None


def _attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


def _strings(*values: Any) -> list[str]:
    out: list[str] = []
    for value in values:
        if isinstance(value, dict):
            for k, v in value.items():
                out.append(str(k))
                out.extend(_strings(v))
        elif isinstance(value, list):
            out.extend(_strings(*value))
        else:
            out.append(str(value))
    return out


def decode(body: bytes) -> list[ReceivedSpan]:
    """The spans of one ExportTraceServiceRequest."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans: list[ReceivedSpan] = []
    for rs in request.resource_spans:
        resource = _attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                attributes = _attrs(s.attributes)
                events = [(e.name, _attrs(e.attributes)) for e in s.events]
                links = [_attrs(link.attributes) for link in s.links]
                texts = _strings(resource, attributes, [n for n, _ in events],
                                 [a for _, a in events], links, s.name, s.status.message,
                                 ss.scope.name, s.trace_state,
                                 [link.trace_state for link in s.links])
                spans.append(ReceivedSpan(
                    service=str(resource.get("service.name", "")), name=s.name, kind=s.kind,
                    trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                    parent_span_id=s.parent_span_id.hex(), attributes=attributes,
                    resource=resource, texts=tuple(texts)))
    return spans


class OtlpReceiver:
    """An OTLP/HTTP (protobuf) trace endpoint on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port("127.0.0.1")
        self._spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if self.path != "/v1/traces" or not 0 < length <= MAX_BODY:
                    self.send_error(404 if self.path != "/v1/traces" else 413)
                    return
                body = self.rfile.read(length)
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                try:
                    spans = decode(body)
                except Exception:
                    self.send_error(400)
                    return
                with receiver._lock:
                    receiver._spans.extend(spans)
                    receiver.requests += 1
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL services export to (`OTEL_EXPORTER_OTLP_ENDPOINT`)."""
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment that makes Parley services export here, quickly."""
        return {"PARLEY_OTEL_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_BSP_SCHEDULE_DELAY": "200"}

    def start(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def wait_for(self, check: Callable[[list[ReceivedSpan]], bool], *,
                 timeout: float = 20.0) -> list[ReceivedSpan]:
        """Poll until `check(spans)` holds; AssertionError with what arrived if it never does."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans()
            if check(spans):
                return spans
            if time.monotonic() > deadline:
                got = sorted({(s.service, s.name) for s in spans})
                raise AssertionError(f"spans never matched within {timeout:.0f} s; got {got}")
            time.sleep(0.1)
