"""Browser-facing error pages: the suggested room name and the escaped page text."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from services.rooms.errorpages import render, suggest_room_name, wants_html


def _request(path: str, accept: str = "text/html") -> Request:
    raw = path.encode()
    return Request({"type": "http", "method": "GET", "path": path, "raw_path": raw,
                    "query_string": b"", "headers": [(b"accept", accept.encode())]})


@pytest.mark.parametrize(("raw", "fixed"), [
    ("hello world!", "hello-world"),
    ("Hello  World", "hello-world"),
    ("-lead", "lead"),
    ("a" * 70, "a" * 64),
    ("!!!", None),
    ("api", None),
])
def test_suggest_room_name_fixes_what_it_can(raw: str, fixed: str | None) -> None:
    assert suggest_room_name(raw) == fixed


def test_wants_html_only_for_pages() -> None:
    assert wants_html(_request("/x", "text/html,application/xhtml+xml,*/*;q=0.8"))
    assert not wants_html(_request("/x", "*/*"))
    assert not wants_html(_request("/x", "application/json"))


def test_render_bad_room_offers_a_fixed_name_and_the_start_page() -> None:
    page = render(404, _request("/hello%20world!"))
    assert "<h1>This room link is not right</h1>" in page
    assert '<a class="btn" href="/hello-world">Open the room “hello-world”</a>' in page
    assert '<a class="btn primary" href="/">Go to the start page</a>' in page


def test_render_escapes_what_was_typed() -> None:
    page = render(404, _request("/%3Cscript%3Ex"))
    assert "<script>" not in page
    assert "&lt;script&gt;x" in page


def test_render_unknown_path_is_a_plain_not_found() -> None:
    page = render(404, _request("/api"))
    assert "<h1>There is nothing at this address</h1>" in page
    assert "detail" not in page
