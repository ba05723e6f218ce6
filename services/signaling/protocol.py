"""The signalling wire protocol: every message as a pydantic model, parse and encode.

`parse_client(frame)` turns one websocket frame into a client message or raises a
`ProtocolError` whose `code` is the `error.code` to answer with; `encode(message)` gives the
JSON text a server message is sent as (encoded once, written to every recipient).
`docs/signaling.md` is the prose form of this module; keep them in step.
"""

from __future__ import annotations

import json
import re
import unicodedata
from enum import IntEnum
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from services.signaling.errors import BadMessage, TooLarge, UnknownType

PEER_ID_PATTERN: Final[str] = r"^[A-Za-z0-9_-]{1,64}$"
MAX_TOKEN_LENGTH: Final[int] = 4096
MAX_ROOM_LENGTH: Final[int] = 256
MAX_SDP_LENGTH: Final[int] = 60_000
MAX_CANDIDATE_LENGTH: Final[int] = 2048
MAX_CHAT_LENGTH: Final[int] = 2000
MAX_NAME_LENGTH: Final[int] = 40  # a display name, after cleaning
MAX_NAME_INPUT: Final[int] = 200  # longer input is refused, not cut
# Control characters, zero-width and bidirectional-override marks: a name shows as typed.
_NAME_DROP: Final[re.Pattern[str]] = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
DEFAULT_MAX_MESSAGE_BYTES: Final[int] = 65536
# The deepest client message is three levels ({"data": {"candidate": {...}}}); a frame of a
# few thousand nested brackets would exhaust the JSON parser's recursion (RecursionError).
MAX_JSON_DEPTH: Final[int] = 32
_JSON_STRING: Final[re.Pattern[str]] = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_JSON_BRACKET: Final[re.Pattern[str]] = re.compile(r"[\[\]{}]")

PeerId: TypeAlias = Annotated[str, Field(pattern=PEER_ID_PATTERN)]
#: A chat line's id, chosen by its sender: acknowledged to the sender (`chat-ack`) and
#: relayed with the line, so a line sent again after a resume is shown once.
ChatId: TypeAlias = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")]


def clean_display_name(value: object) -> str | None:
    """A display name as shown to the room: NFC, no control or bidi marks, spaces collapsed,
    at most `MAX_NAME_LENGTH` characters; empty becomes None.

    Raises:
        ValueError: not a string, or longer than `MAX_NAME_INPUT` characters.
    """
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME_INPUT:
        raise ValueError("name must be a string of at most 200 characters")
    text = " ".join(_NAME_DROP.sub("", unicodedata.normalize("NFC", value)).split())
    return text[:MAX_NAME_LENGTH].strip() or None


#: A display name chosen by its person: relayed to the room's members only (in the room's
#: bus payloads, like chat), never logged, never in metrics, subjects or presence.
DisplayName: TypeAlias = Annotated[str | None, BeforeValidator(clean_display_name)]


class CloseCode(IntEnum):
    """Websocket close codes the server uses (docs/signaling.md, "Close codes")."""

    NORMAL = 1000  # after `leave`
    GOING_AWAY = 1001  # server shutting down: reconnect (any replica) and resume
    TOO_BIG = 1009  # oversized messages, repeatedly
    TRY_AGAIN = 1013  # the client could not keep up with its messages: reconnect and resume
    REPLACED = 4000  # this peer id resumed on another socket
    ORIGIN_REFUSED = 4003  # the page's Origin may not open /ws (closed right after accept)
    BAD_JOIN = 4400
    UNAUTHORIZED = 4401
    WRONG_ROOM = 4403
    RESUME_FAILED = 4404
    JOIN_TIMEOUT = 4408
    NO_PLACE = 4409
    MEMBERSHIP_ENDED = 4410  # the peer's slot ended: it left through rooms, or it expired
    ABUSE = 4429


ErrorCode: TypeAlias = Literal[
    "bad-message", "unknown-type", "too-large", "rate-limited", "unknown-peer", "not-joined",
    "sfu-unavailable",
]


class _Wire(BaseModel):
    # Tolerant reader: unknown fields from newer clients are ignored, never forwarded.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


# --- shared pieces -----------------------------------------------------------------------


class MediaState(_Wire):
    """What a peer is sending: mic on, camera on, screen shared."""

    audio: StrictBool = True
    video: StrictBool = True
    screen: StrictBool = False


class SessionDescription(_Wire):
    """An RTCSessionDescriptionInit."""

    type: Literal["offer", "answer", "pranswer", "rollback"]
    sdp: str = Field(default="", max_length=MAX_SDP_LENGTH)


class IceCandidate(_Wire):
    """An RTCIceCandidateInit (`candidate.toJSON()` in a browser)."""

    candidate: str = Field(default="", max_length=MAX_CANDIDATE_LENGTH)
    sdpMid: str | None = Field(default=None, max_length=64)  # WebRTC's name
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=1024)
    usernameFragment: str | None = Field(default=None, max_length=256)


class SignalData(_Wire):
    """Exactly one of `description` or `candidate` (`candidate: null` ends the candidates)."""

    description: SessionDescription | None = None
    candidate: IceCandidate | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SignalData:
        given = self.model_fields_set & {"description", "candidate"}
        if len(given) != 1:
            raise ValueError("data must have exactly one of 'description' or 'candidate'")
        if "description" in given and self.description is None:
            raise ValueError("description must not be null")
        return self

    def wire(self) -> dict[str, Any]:
        """The data as forwarded: validated fields only, an explicit null kept."""
        return self.model_dump(mode="json", exclude_unset=True)


class PeerInfo(_Wire):
    """One peer present in the room, as listed in `welcome`."""

    peer_id: str
    media: MediaState = Field(default_factory=MediaState)


# --- client → server ---------------------------------------------------------------------


class ResumeRequest(_Wire):
    """Take back a dropped peer id within the grace period."""

    peer_id: PeerId
    key: str = Field(min_length=1, max_length=128)


class Join(_Wire):
    """The first message on a socket: who I am (token) and where (room name)."""

    type: Literal["join"]
    token: str = Field(min_length=1, max_length=MAX_TOKEN_LENGTH)
    room: str = Field(min_length=1, max_length=MAX_ROOM_LENGTH)
    resume: ResumeRequest | None = None
    media: MediaState | None = None  # optional initial media state (addition to the draft)
    # the join's W3C traceparent (the one the browser sent rooms): its spans join that trace;
    # anything but a well-formed version-00 value is ignored
    traceparent: str | None = Field(default=None, max_length=64)


class Signal(_Wire):
    """An offer, answer or ICE candidate for one peer."""

    type: Literal["signal"]
    to: PeerId
    data: SignalData


class MediaStateUpdate(_Wire):
    """My media state changed; broadcast to the room."""

    type: Literal["media-state"]
    audio: StrictBool
    video: StrictBool
    screen: StrictBool
    name: DisplayName = None  # addition: my display name, relayed with my media state

    def media(self) -> MediaState:
        return MediaState(audio=self.audio, video=self.video, screen=self.screen)


class Chat(_Wire):
    """A chat line to the room; relayed, never stored, never logged."""

    type: Literal["chat"]
    text: str = Field(min_length=1, max_length=MAX_CHAT_LENGTH)
    id: ChatId | None = None  # addition: acknowledged with `chat-ack`, relayed with the line


class SfuRequest(_Wire):
    """To the room's SFU (docs/sfu.md): my offer, my slot map (publisher → slot), or both.

    `ticket` comes from rooms and names the SFU; signalling forwards only for its own peer
    and room, without the offer's candidate lines.
    """

    type: Literal["sfu"]
    ticket: str = Field(min_length=1, max_length=MAX_TOKEN_LENGTH)
    description: SessionDescription | None = None
    subscribe: dict[Annotated[str, Field(pattern=PEER_ID_PATTERN)],
                    Annotated[int, Field(ge=0, le=63)]] | None = Field(default=None,
                                                                        max_length=64)


class Ping(_Wire):
    """Keepalive; answered with `pong`."""

    type: Literal["ping"]


class Leave(_Wire):
    """I am leaving; the server answers by closing with 1000."""

    type: Literal["leave"]


ClientMessage: TypeAlias = Annotated[
    Join | Signal | MediaStateUpdate | Chat | Ping | Leave | SfuRequest,
    Field(discriminator="type")
]
CLIENT_TYPES: Final[frozenset[str]] = frozenset(
    {"join", "signal", "media-state", "chat", "ping", "leave", "sfu"}
)
_CLIENT: Final[TypeAdapter[ClientMessage]] = TypeAdapter(ClientMessage)


# --- server → client ---------------------------------------------------------------------


class Welcome(_Wire):
    """Answer to a successful `join`: your peer id and who is here."""

    type: Literal["welcome"] = "welcome"
    peer_id: str
    peers: list[PeerInfo]
    resume_key: str
    ping_interval: float
    resumed: bool = False  # addition: true when this welcome answers a resume
    pending: list[str] = Field(default_factory=list)  # slots held with no socket yet
    locked: bool = False  # addition: the room's lock now (a resume missed `room-state`)


class PeerJoined(_Wire):
    type: Literal["peer-joined"] = "peer-joined"
    peer_id: str
    media: MediaState = Field(default_factory=MediaState)  # addition to the draft


class PeerPending(_Wire):
    """A peer took a slot through rooms; its socket has not joined yet."""

    type: Literal["peer-pending"] = "peer-pending"
    peer_id: str


class PeerLeft(_Wire):
    type: Literal["peer-left"] = "peer-left"
    peer_id: str
    reason: Literal["left", "timeout"]


class RoomStateOut(_Wire):
    """The room was locked or unlocked (by its owner, through rooms)."""

    type: Literal["room-state"] = "room-state"
    locked: bool


class SignalOut(_Wire):
    type: Literal["signal"] = "signal"
    from_: str = Field(alias="from")
    data: dict[str, Any]


class MediaStateOut(_Wire):
    type: Literal["media-state"] = "media-state"
    from_: str = Field(alias="from")
    audio: bool
    video: bool
    screen: bool
    name: str | None = None  # omitted when the sender gave none


class ChatOut(_Wire):
    type: Literal["chat"] = "chat"
    from_: str = Field(alias="from")
    text: str
    at: float
    id: str | None = None  # the sender's id of the line, omitted when it gave none


class ChatAck(_Wire):
    """To the sender only: its chat line `id` was handed to the room's bus."""

    type: Literal["chat-ack"] = "chat-ack"
    id: str


class Pong(_Wire):
    type: Literal["pong"] = "pong"


class SfuOut(_Wire):
    """The SFU's answer to my offer (`description`), or `ok` for a slot map."""

    type: Literal["sfu"] = "sfu"
    ok: bool = True
    description: dict[str, Any] | None = None


class MediaPathOut(_Wire):
    """The room moved to another media path (rooms switched it to the SFU)."""

    type: Literal["media-path"] = "media-path"
    path: Literal["mesh", "sfu"]


class Error(_Wire):
    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    ref: str | None = None


ServerMessage: TypeAlias = Annotated[
    Welcome | PeerJoined | PeerPending | PeerLeft | SignalOut | MediaStateOut | ChatOut | Pong
    | RoomStateOut | ChatAck | Error | SfuOut | MediaPathOut,
    Field(discriminator="type"),
]
_SERVER: Final[TypeAdapter[ServerMessage]] = TypeAdapter(ServerMessage)
PONG_FRAME: Final[str] = '{"type":"pong"}'


# --- codec -------------------------------------------------------------------------------


def _describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-"))
    # The error text names the field, never echoes its value (chat text, tokens).
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `text` nests arrays/objects deeper than `limit`, before parsing it.

    A cheap scan: when the frame holds no more brackets than `limit` it cannot nest
    deeper (one C-speed count); otherwise strings are blanked out (brackets inside them do
    not nest) and the brackets left are counted in order. Malformed input is judged by the
    same count; the parser reports the rest.
    """
    if text.count("{") + text.count("[") <= limit:
        return False
    depth = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def parse_client(frame: str | bytes, *,
                 max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> ClientMessage:
    """Parse one websocket frame from a client.

    Args:
        frame: the text (or binary, UTF-8) payload of one frame.
        max_bytes: the size limit, in UTF-8 bytes.

    Returns:
        The validated message.

    Raises:
        TooLarge: the frame exceeds `max_bytes`.
        BadMessage: not UTF-8 JSON, nested deeper than `MAX_JSON_DEPTH`, not an object, no
            string `type`, or fails its schema.
        UnknownType: `type` is not a client message type.
    """
    size = len(frame)  # bytes, or characters: a lower bound of the UTF-8 size
    if size > max_bytes or (isinstance(frame, str) and size * 4 > max_bytes
                            and len(frame.encode()) > max_bytes):
        raise TooLarge(f"message larger than {max_bytes} bytes")
    try:
        text = frame.decode() if isinstance(frame, bytes) else frame
    except UnicodeDecodeError as exc:
        raise BadMessage("not valid JSON") from exc
    if json_depth_exceeds(text):
        raise BadMessage(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadMessage("not valid JSON") from exc
    if not isinstance(doc, dict):
        raise BadMessage("message must be a JSON object")
    kind = doc.get("type")
    if not isinstance(kind, str):
        raise BadMessage("message lacks a string 'type'")
    if kind not in CLIENT_TYPES:
        raise UnknownType(f"unknown message type {kind[:40]!r}", ref=kind[:40])
    try:
        return _CLIENT.validate_python(doc)
    except ValidationError as exc:
        raise BadMessage(_describe(exc), ref=kind) from exc


def encode(message: BaseModel) -> str:
    """The JSON text of a server message (aliases applied, `ref: null`, `name: null` and a
    chat's `id: null` omitted)."""
    return message.model_dump_json(
        by_alias=True,
        exclude_none=isinstance(message, (Error, MediaStateOut, ChatOut, SfuOut)))


def parse_server(frame: str | bytes) -> ServerMessage:
    """Parse a server message (for clients, tests and the benchmark)."""
    return _SERVER.validate_json(frame)


def error_frame(code: ErrorCode, message: str, *, ref: str | None = None) -> str:
    """The encoded `error` message."""
    return encode(Error(code=code, message=message, ref=ref))
