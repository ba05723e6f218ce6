"""External TURN servers (an existing coturn): their settings, health and ICE entries; sans-I/O.

`PARLEY_TURN_SERVERS` lists servers, one item each: one or more `turn:`/`turns:`/`stun:`
URLs of that server separated by spaces (`turn:turn.example.org:3478?transport=udp
turns:turn.example.org:5349?transport=tcp`); `PARLEY_TURN_SERVER_SECRETS` gives each its
coturn `static-auth-secret` (the TURN REST scheme, `use-auth-secret`), in the same order.
Rooms hands out every server that is up, with credentials minted from its own secret, next
to the room's Parley relay when there is one. A server is named in logs and metrics by its
index (`#1`, `#2`): never by its host, never with its secret.

`TurnHealth` follows the probe's answers: down after a failed probe, up after a good one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal

from services.common.credentials import mint_turn_credential

MAX_SERVERS: Final[int] = 16
MAX_URLS: Final[int] = 8
MAX_URL_LENGTH: Final[int] = 300
#: RFC 7065 §3.1 TURN URIs (and RFC 7064 STUN URIs): scheme, host (name, IPv4 or [IPv6]),
#: optional port, optional `?transport=udp|tcp`.
_URL: Final[re.Pattern[str]] = re.compile(
    r"^(?P<scheme>turns?|stuns?):(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})"
    r"(?::(?P<port>\d{1,5}))?(?:\?transport=(?P<transport>udp|tcp))?$")


@dataclass(frozen=True, slots=True)
class TurnUrl:
    """One parsed TURN/STUN URL."""

    url: str
    scheme: str
    host: str
    port: int
    transport: Literal["udp", "tcp"]


@dataclass(frozen=True, slots=True)
class ExternalTurn:
    """One external TURN server: its URLs and its REST secret; `index` from 1, for logs."""

    index: int
    urls: tuple[TurnUrl, ...]
    secret: str = field(repr=False)

    @property
    def label(self) -> str:
        """How logs and metrics name it: by position, never by host."""
        return f"#{self.index}"

    def probe_target(self) -> tuple[str, int, Literal["udp", "tcp"]] | None:
        """Where the health probe allocates: the first plain `turn:` URL (UDP first)."""
        plain = [u for u in self.urls if u.scheme == "turn"]
        plain.sort(key=lambda u: u.transport != "udp")
        if not plain:
            return None
        u = plain[0]
        return u.host.strip("[]"), u.port, u.transport


def parse_url(url: str) -> TurnUrl:
    """Parse one TURN or STUN URL; `ValueError` names it (URLs hold no secret)."""
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"TURN URL longer than {MAX_URL_LENGTH} characters")
    match = _URL.match(url)
    if not match:
        raise ValueError(f"not a turn:, turns: or stun: URL: {url!r}")
    scheme = match["scheme"]
    port = int(match["port"]) if match["port"] else (5349 if scheme.endswith("s") else 3478)
    if not 0 < port < 65536:
        raise ValueError(f"port out of range in {url!r}")
    transport: Literal["udp", "tcp"] = "udp" if match["transport"] == "udp" else "tcp"
    if match["transport"] is None:
        transport = "tcp" if scheme == "turns" else "udp"
    return TurnUrl(url, scheme, match["host"], port, transport)


def split_server(item: str) -> tuple[TurnUrl, ...]:
    """One server's URLs from one setting item (space-separated); at least one TURN URL."""
    urls = tuple(parse_url(u) for u in item.split())
    if not urls:
        raise ValueError("an empty TURN server entry")
    if len(urls) > MAX_URLS:
        raise ValueError(f"more than {MAX_URLS} URLs for one TURN server")
    if not any(u.scheme in ("turn", "turns") for u in urls):
        raise ValueError(f"no turn: or turns: URL in {item!r}")
    return urls


def check_turn_servers(values: list[str]) -> list[str]:
    """Validate `PARLEY_TURN_SERVERS` items (each parsed; at most `MAX_SERVERS`)."""
    if len(values) > MAX_SERVERS:
        raise ValueError(f"at most {MAX_SERVERS} TURN servers")
    for item in values:
        split_server(item)
    return values


def external_servers(items: list[str], secrets: list[str]) -> list[ExternalTurn]:
    """The configured servers, each with its secret.

    Raises:
        ValueError: the counts differ, or a secret is empty (the message has no secret).
    """
    if len(items) != len(secrets):
        raise ValueError(f"PARLEY_TURN_SERVERS lists {len(items)} server(s) but "
                         f"PARLEY_TURN_SERVER_SECRETS has {len(secrets)} secret(s)")
    for i, secret in enumerate(secrets, start=1):
        if not secret:
            raise ValueError(f"PARLEY_TURN_SERVER_SECRETS: the secret of server #{i} is empty")
    return [ExternalTurn(i, split_server(item), secret)
            for i, (item, secret) in enumerate(zip(items, secrets, strict=True), start=1)]


Transition = Literal["down", "up"]


class TurnHealth:
    """Which external servers are up: each probe answer moves one server's state.

    A server starts up (handed out) until its first probe says otherwise.
    """

    def __init__(self, servers: list[ExternalTurn]) -> None:
        self.servers = servers
        self._down: set[int] = set()

    def record(self, index: int, *, ok: bool) -> Transition | None:
        """One probe answer for server `index`; the change it made, if any."""
        if ok and index in self._down:
            self._down.discard(index)
            return "up"
        if not ok and index not in self._down:
            self._down.add(index)
            return "down"
        return None

    def is_up(self, index: int) -> bool:
        return index not in self._down

    def up(self) -> list[ExternalTurn]:
        """The servers to hand out, in configured order."""
        return [s for s in self.servers if s.index not in self._down]


def ice_entries(servers: list[ExternalTurn], *, ttl: int, now: float) -> list[dict[str, object]]:
    """RTCIceServer entries for `servers`, each with a credential minted from its secret."""
    entries: list[dict[str, object]] = []
    for server in servers:
        cred = mint_turn_credential(server.secret, ttl=ttl, now=now)
        entries.append({"urls": [u.url for u in server.urls], "username": cred.username,
                        "credential": cred.password})
    return entries
