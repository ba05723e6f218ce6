"""Browser-facing error pages: a request that accepts `text/html` and fails (a mistyped room
link, `/api`, an unknown page) gets a page in the web client's style that says what happened
and offers a way on (the start page, or a room name that works); the JSON API keeps JSON.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Final
from urllib.parse import quote, unquote

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.roomnames import MAX_LENGTH, RoomNameError, normalize

_NOT_ALLOWED: Final[re.Pattern[str]] = re.compile(r"[^\w.-]+")
_TITLES: Final[dict[int, str]] = {
    404: "There is nothing at this address",
    405: "This address is not a page",
    422: "This address is not a page",
    429: "Too many requests just now",
}

_PAGE: Final[str] = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
  <meta name="color-scheme" content="dark">
  <meta name="referrer" content="no-referrer">
  <title>{title} · Parley</title>
  <link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
  <link rel="stylesheet" href="/static/pages.css">
</head>
<body>
  <a class="skip" href="#main">Skip to content</a>
  <header class="topbar">
    <a class="brand" href="/" aria-label="Parley home"><span class="logo" aria-hidden="true">\
</span>Parley</a>
    <nav aria-label="Pages"><a href="/privacy">Privacy</a> <a href="/stats">Stats</a></nav>
  </header>
  <main id="main" class="page error-page" tabindex="-1">
    <h1>{title}</h1>
    <p class="lead">{message}</p>
    <p class="actions">{actions}</p>
  </main>
  <footer class="foot"><a href="/">Parley</a> · <a href="/privacy">Privacy</a></footer>
</body>
</html>
"""


def wants_html(request: Request) -> bool:
    """Whether the client asked for a page (a browser's navigation), not for JSON."""
    return "text/html" in request.headers.get("accept", "").lower()


def suggest_room_name(raw: str) -> str | None:
    """A valid room name close to `raw` ("hello world!" → "hello-world"), or None."""
    text = unicodedata.normalize("NFKC", raw).casefold()
    text = _NOT_ALLOWED.sub("-", text).strip("-._")
    text = text[:MAX_LENGTH].rstrip("-._")
    try:
        return normalize(text)
    except RoomNameError:
        return None


def _room_segment(request: Request) -> str | None:
    """The single path segment of `/{something}` (decoded), or None for deeper paths."""
    path = request.url.path.strip("/")
    if not path or "/" in path:
        return None
    return unquote(path)


def render(status: int, request: Request) -> str:
    """The page for an error `status` on `request` (every value is HTML-escaped)."""
    home = '<a class="btn primary" href="/">Go to the start page</a>'
    segment = _room_segment(request)
    if status == 404 and segment is not None:
        try:
            normalize(segment)
            reason = ""
        except RoomNameError as exc:
            reason = str(exc)
        if reason and not reason.endswith("is reserved"):
            title = "This room link is not right"
            message = (f"“{segment[:80]}” cannot be a room name: {reason}. "
                       "Check the link you were sent, or start a new call.")
            fixed = suggest_room_name(segment)
            actions = home
            if fixed:
                actions = (f'<a class="btn" href="/{quote(fixed)}">Open the room '
                           f'“{html.escape(fixed)}”</a> {home}')
            return _PAGE.format(title=html.escape(title), message=html.escape(message),
                                actions=actions)
    title = _TITLES.get(status, "Something went wrong")
    message = {
        404: ("The page you asked for does not exist. "
              "To start or join a call, go to the start page."),
        429: "Wait a minute, then try again.",
    }.get(status, f"The server answered with an error ({status}). Try again from the start page.")
    return _PAGE.format(title=html.escape(title), message=html.escape(message), actions=home)


async def html_or_json_error(request: Request, exc: Exception) -> Response:
    """Exception handler: an HTML page for browsers, FastAPI's JSON answer otherwise."""
    assert isinstance(exc, StarletteHTTPException)
    if not wants_html(request) or request.method not in ("GET", "HEAD"):
        return await http_exception_handler(request, exc)
    from services.rooms.routes import HTML_HEADERS

    headers = {**HTML_HEADERS, **(exc.headers or {})}
    return HTMLResponse(render(exc.status_code, request), status_code=exc.status_code,
                        headers=headers)
