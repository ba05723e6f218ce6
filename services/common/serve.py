"""Run one HTTP service from the CLI: settings from the environment, a clear one-line
error for a missing or invalid setting, then uvicorn without its access log."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError as PydanticSettingsError

from services.common.settings import SettingsError

S = TypeVar("S")


def settings_error(exc: ValidationError, prefix: str = "PARLEY_") -> str:
    """`PARLEY_ROOM_CAPACITY: Input should be a valid integer` for the first bad setting.

    The message is pydantic's own, less its `Value error, ` prefix; only the first line is
    kept, so that the whole error stays one line.
    """
    first = exc.errors()[0]
    name = "_".join(str(p) for p in first["loc"] if not isinstance(p, int)).upper()
    message = str(first["msg"]).removeprefix("Value error, ").splitlines()[0]
    return f"{prefix}{name}: {message}" if name else message


def settings_source_error(exc: PydanticSettingsError, prefix: str = "PARLEY_") -> str:
    """One line for a value pydantic-settings could not decode (e.g. not JSON)."""
    match = re.search(r'field "([A-Za-z0-9_]+)"', str(exc))
    if match is None:
        return str(exc).splitlines()[0]
    return f"{prefix}{match.group(1).upper()}: cannot be decoded (give a JSON value)"


def load_settings(settings_cls: Callable[..., S], **overrides: Any) -> S:
    """Build settings (flags over env); a bad or missing setting exits 2 with one line."""
    try:
        return settings_cls(**overrides)
    except SettingsError as exc:
        fail(str(exc))
    except ValidationError as exc:
        fail(settings_error(exc))
    except PydanticSettingsError as exc:
        fail(settings_source_error(exc))


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `parley: message` on stderr and exit with `code`."""
    typer.echo(f"parley: {message}", err=True)
    raise typer.Exit(code)


def serve(app_obj: Any, host: str, port: int, **options: Any) -> None:
    """Run an ASGI app with uvicorn: no access log (it prints addresses and paths)."""
    import uvicorn

    from services.common.logs import uvicorn_log_config

    defaults: dict[str, Any] = {
        "log_config": uvicorn_log_config(), "access_log": False,
        "ws_per_message_deflate": False, "server_header": False, "proxy_headers": False,
        "timeout_graceful_shutdown": 10,
        # a request line or header block over 64 KiB is answered 400 with one log line
        # (httptools refuses it; h11, when it is the parser, is told the same limit)
        "h11_max_incomplete_event_size": 64 * 1024,
    }
    defaults.update(options)
    uvicorn.run(app_obj, host=host, port=port, **defaults)


def run_service(
    settings_cls: type[Any],
    create_app: Callable[[Any], Any],
    *,
    host: str | None,
    port: int | None,
    uvicorn_options: Callable[[Any], dict[str, Any]] | None = None,
) -> None:
    """Build settings (flags over env), the app, and serve it; bad settings exit 2."""
    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = load_settings(settings_cls, **overrides)
    try:
        application = create_app(settings)
    except SettingsError as exc:
        fail(str(exc))
    except ValidationError as exc:
        fail(settings_error(exc))
    options = dict(uvicorn_options(settings)) if uvicorn_options else {}
    for key in ("host", "port", "factory"):
        options.pop(key, None)
    serve(application, settings.host, settings.port, **options)
