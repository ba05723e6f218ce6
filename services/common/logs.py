"""Stdout logging that refuses to print IP addresses and room names.

Every service calls `setup_logging()`. A filter on the root handler rewrites each record:
IPv4/IPv6 addresses anywhere in the message or its arguments become `[ip]`, and values
passed as `extra={"room": ...}` / `extra={"ip": ...}` or registered with `redact()` become
`[room]` / `[ip]`. uvicorn's access log is replaced by one that prints the route template
(`/api/rooms/{name}/join`), never the path. Only `services.common.diaglog` may keep them.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import sys
import threading
from typing import Any, Final

IPV4: Final[re.Pattern[str]] = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])"
)
# Candidate IPv6 runs (hex groups with at least two colons); validated with ipaddress.
IPV6_CANDIDATE: Final[re.Pattern[str]] = re.compile(
    r"(?<![0-9A-Za-z:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|(?:\d{1,3}\.){3}\d{1,3})(?:%[0-9A-Za-z]+)?(?![0-9A-Za-z:])"
)
SENSITIVE_EXTRAS: Final[dict[str, str]] = {
    "ip": "[ip]", "client": "[ip]", "client_ip": "[ip]", "room": "[room]", "room_name": "[room]",
}
MAX_SECRETS: Final[int] = 10_000

_lock = threading.Lock()
_secrets: dict[str, str] = {}


def redact(value: str, label: str = "room") -> None:
    """Register a value (e.g. a room name this process saw) that logs must never print."""
    if len(value) < 3:
        return  # too short to scrub without mangling ordinary words
    with _lock:
        if len(_secrets) >= MAX_SECRETS:
            _secrets.pop(next(iter(_secrets)))
        _secrets[value] = f"[{label}]"


def _ipv6_sub(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        ipaddress.IPv6Address(text.split("%", 1)[0])
    except ValueError:
        return text
    return "[ip]"


def scrub(text: str) -> str:
    """Remove IP addresses and registered sensitive values from `text`."""
    text = IPV4.sub("[ip]", text)
    if ":" in text:
        text = IPV6_CANDIDATE.sub(_ipv6_sub, text)
    if _secrets:
        with _lock:
            items = sorted(_secrets.items(), key=lambda kv: -len(kv[0]))
        for value, label in items:
            if value in text:
                text = text.replace(value, label)
    return text


class PIIFilter(logging.Filter):
    """Rewrite records so that no IP address or room name reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the log line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = scrub(message)
        record.args = None
        for name, label in SENSITIVE_EXTRAS.items():
            if name in record.__dict__:
                setattr(record, name, label)
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class _NoSocketChatter(logging.Filter):
    """Drop uvicorn's websocket frame dumps and per-connection lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return False
        msg = str(record.msg)
        return not ("WebSocket" in msg or msg.startswith("connection "))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "t": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out)


def setup_logging(level: str = "info", *, json_lines: bool = False, service: str = "") -> None:
    """Configure the root logger for stdout with the PII filter; quiet uvicorn's access log."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(PIIFilter())
    fmt = f"%(asctime)s %(levelname)s {service + ' ' if service else ''}%(name)s: %(message)s"
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(fmt))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers = []
        lg.propagate = True
    # uvicorn's access log prints the client address and the raw path: never enabled.
    logging.getLogger("uvicorn.access").disabled = True
    # the websocket layer logs whole frames (chat text, tokens) at debug level through
    # uvicorn.error, and a line per socket at info: neither is worth a log line
    err = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _NoSocketChatter) for f in err.filters):
        err.addFilter(_NoSocketChatter())


def uvicorn_log_config() -> dict[str, Any]:
    """A uvicorn log_config that leaves logging to `setup_logging` (no access log)."""
    return {"version": 1, "disable_existing_loggers": False}
