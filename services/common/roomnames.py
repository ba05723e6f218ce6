"""Room names: normalisation (case-folded), validation, and readable hard-to-guess names."""

from __future__ import annotations

import re
import secrets
import unicodedata
from typing import Final

MAX_LENGTH: Final[int] = 64
_ALLOWED: Final[re.Pattern[str]] = re.compile(r"^[\w][\w.-]{0,63}$")
RESERVED: Final[frozenset[str]] = frozenset({
    "api", "static", "assets", "ws", "healthz", "readyz", "metrics", "config.json",
    "privacy", "stats", "favicon.ico", "robots.txt", "index.html", "beacon", "reports",
})

ADJECTIVES: Final[tuple[str, ...]] = (
    "amber", "ancient", "azure", "bold", "brave", "breezy", "bright", "brisk", "calm",
    "candid", "clever", "cobalt", "cosmic", "coral", "cozy", "crimson", "crisp", "curious",
    "dapper", "daring", "dawn", "deep", "dusky", "eager", "early", "easy", "electric",
    "emerald", "fancy", "fearless", "fierce", "flying", "fond", "frosty", "gentle", "giant",
    "gilded", "glad", "golden", "graceful", "grand", "happy", "hazel", "hidden", "honest",
    "humble", "icy", "indigo", "ivory", "jade", "jolly", "keen", "kind", "lively", "lucky",
    "lunar", "magic", "marble", "mellow", "merry", "mighty", "misty", "modest", "noble",
    "nimble", "ocean", "olive", "opal", "patient", "peaceful", "plucky", "polar", "proud",
    "quick", "quiet", "rapid", "rosy", "royal", "rustic", "sandy", "scarlet", "serene",
    "shiny", "silent", "silver", "simple", "sleek", "smooth", "snowy", "solar", "sonic",
    "spicy", "spry", "starry", "steady", "stormy", "sturdy", "sunny", "swift", "tidy",
    "tranquil", "true", "vast", "velvet", "violet", "vivid", "warm", "wild", "windy",
    "wise", "witty", "young", "zesty",
)
ANIMALS: Final[tuple[str, ...]] = (
    "albatross", "alpaca", "antelope", "badger", "beaver", "bison", "bobcat", "buffalo",
    "camel", "caribou", "cheetah", "chipmunk", "cobra", "condor", "cougar", "coyote",
    "crane", "cricket", "dingo", "dolphin", "donkey", "dove", "dragonfly", "eagle", "egret",
    "elk", "falcon", "ferret", "finch", "flamingo", "fox", "gazelle", "gecko", "gibbon",
    "giraffe", "goose", "gopher", "gorilla", "grouse", "hare", "hawk", "hedgehog", "heron",
    "hippo", "hornet", "ibex", "iguana", "impala", "jackal", "jaguar", "jay", "kestrel",
    "kiwi", "koala", "lemur", "leopard", "lion", "llama", "lobster", "lynx", "magpie",
    "manatee", "marmot", "marten", "meerkat", "mink", "mole", "moose", "narwhal", "newt",
    "ocelot", "octopus", "orca", "osprey", "otter", "owl", "panda", "panther", "parrot",
    "pelican", "penguin", "pika", "puffin", "puma", "quail", "rabbit", "raccoon", "raven",
    "robin", "salmon", "seal", "shark", "sparrow", "squid", "stork", "swan", "tapir",
    "tiger", "toucan", "turtle", "viper", "walrus", "weasel", "whale", "wolf", "wombat",
    "yak", "zebra",
)


class RoomNameError(ValueError):
    """A room name is empty, too long, has characters we don't take, or is reserved."""


def normalize(name: str) -> str:
    """Case-fold and NFKC-normalise `name`, then validate it.

    Raises:
        RoomNameError: with a message a user can act on.
    """
    if not isinstance(name, str):
        raise RoomNameError("room name must be a string")
    folded = unicodedata.normalize("NFKC", name.strip()).casefold()
    if not folded:
        raise RoomNameError("room name must not be empty")
    if len(folded) > MAX_LENGTH:
        raise RoomNameError(f"room name must be at most {MAX_LENGTH} characters")
    if not _ALLOWED.match(folded):
        raise RoomNameError(
            "room name may contain letters, digits, '-', '_' and '.', and must start "
            "with a letter or digit"
        )
    if folded in RESERVED:
        raise RoomNameError(f"room name {folded!r} is reserved")
    return folded


def random_name() -> str:
    """A readable, hard-to-guess name like `amber-otter-482193` (about 33 bits)."""
    return (
        f"{secrets.choice(ADJECTIVES)}-{secrets.choice(ANIMALS)}-"
        f"{secrets.randbelow(1_000_000):06d}"
    )
