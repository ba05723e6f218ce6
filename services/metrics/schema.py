"""The beacon schema: what a browser may send, and the record the ingest keeps for 48 hours.

`Beacon` is the wire format (validated with `extra="forbid"`: an `ip`, `room`, `userAgent` or
any other field not listed here is a 422, never silently kept). `BeaconRecord` is what goes
into the raw JetStream stream: the beacon's coarse fields plus browser/OS/device derived on
the server and the day, without the nonce (it travels only as the `Nats-Msg-Id` header, for
de-duplication). `beacon_json_schema()` is published at `GET /beacon/schema`; the `/privacy`
page renders from it, so the page and the validator cannot drift.
"""

from __future__ import annotations

from typing import Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION: Final[int] = 1

Event = Literal["session-end", "connect-failure"]
FailureStage = Literal["signalling", "ice", "dtls", "media"]
CandidateType = Literal["host", "srflx", "prflx", "relay"]
Protocol = Literal["udp", "tcp"]
RelayProtocol = Literal["udp", "tcp", "tls"]
MuteToggles = Literal["0", "1-2", "3+"]
Duration = Literal["<1m", "1-5m", "5-15m", "15-60m", "60m+"]
Peers = Literal["1", "2", "3-4", "5+"]
IceRestarts = Literal["0", "1", "2+"]
BrowserFamily = Literal[
    "Chrome", "Chrome iOS", "Edge", "Firefox", "Firefox iOS", "Safari", "Opera",
    "Samsung Internet", "Other",
]
OsFamily = Literal["Windows", "macOS", "Linux", "ChromeOS", "Android", "iOS", "Other"]
DeviceClass = Literal["desktop", "mobile", "tablet", "other"]

NONCE_PATTERN: Final[str] = r"^[A-Za-z0-9_-]{16,64}$"


class Beacon(BaseModel):
    """One summary per call session, sent by the browser at session end or on failure."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="Parley usage beacon")

    v: Literal[1] = Field(description="Schema version (always 1).")
    nonce: str = Field(
        pattern=NONCE_PATTERN,
        description="Random value made fresh for each call session. Used only so that a "
        "session sent twice is counted once; it is never stored in aggregates and the raw "
        "stream that holds it for de-duplication keeps nothing longer than 48 hours.",
    )
    event: Event = Field(
        description="Why the beacon was sent: the session ended, or it failed to connect."
    )
    failure_stage: FailureStage | None = Field(
        default=None,
        description="For a connect-failure only: the step that failed (signalling, ICE, DTLS, "
        "media).",
    )
    local_candidate: CandidateType | None = Field(
        default=None,
        description="Type of this browser's candidate in the selected ICE pair (host, srflx, "
        "prflx, relay); never the address.",
    )
    remote_candidate: CandidateType | None = Field(
        default=None, description="Type of the other side's candidate in the selected pair."
    )
    protocol: Protocol | None = Field(
        default=None, description="Transport of the selected pair (udp or tcp)."
    )
    relay_protocol: RelayProtocol | None = Field(
        default=None,
        description="When this browser's candidate is a relay: how it reached the relay "
        "(udp, tcp, tls).",
    )
    screen_share: bool = Field(default=False, description="Screen sharing was used.")
    mute_toggles: MuteToggles = Field(
        default="0", description="How often the microphone was muted or unmuted: 0, 1-2, 3+."
    )
    camera_off: bool = Field(default=False, description="The camera was turned off at some point.")
    always_relay: bool = Field(
        default=False, description="The call was forced through the relay (TURN only)."
    )
    via_server: bool = Field(
        default=False, description="The call went through Parley's SFU (not peer to peer)."
    )
    duration: Duration = Field(
        default="<1m", description="Session length, coarse: <1m, 1-5m, 5-15m, 15-60m, 60m+."
    )
    peers: Peers = Field(
        default="1", description="Most other participants seen at once: 1, 2, 3-4, 5+."
    )
    ice_restarts: IceRestarts = Field(default="0", description="ICE restarts: 0, 1, 2+.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.event == "connect-failure") != (self.failure_stage is not None):
            raise ValueError("failure_stage is required for connect-failure and only for it")
        if self.relay_protocol is not None and self.local_candidate != "relay":
            raise ValueError("relay_protocol is only for a local relay candidate")
        return self


class ClientInfo(BaseModel):
    """What the server derives from User-Agent and UA client hints; the strings are dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    browser: BrowserFamily = Field(description="Browser family, from a fixed list.")
    browser_major: int = Field(
        ge=0, le=999, description="Browser major version (0 when unknown or 'Other')."
    )
    os: OsFamily = Field(description="Operating-system family, from a fixed list; no version.")
    device: DeviceClass = Field(description="Device class: desktop, mobile, tablet, other.")


class BeaconRecord(BaseModel):
    """A beacon as kept in the raw stream (≤ 48 h): no nonce, no IP, no UA string, day only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$", description="UTC day it arrived on.")
    client: ClientInfo
    event: Event
    failure_stage: FailureStage | None = None
    local_candidate: CandidateType | None = None
    remote_candidate: CandidateType | None = None
    protocol: Protocol | None = None
    relay_protocol: RelayProtocol | None = None
    screen_share: bool = False
    mute_toggles: MuteToggles = "0"
    camera_off: bool = False
    always_relay: bool = False
    via_server: bool = False
    duration: Duration = "<1m"
    peers: Peers = "1"
    ice_restarts: IceRestarts = "0"

    @classmethod
    def from_beacon(cls, beacon: Beacon, *, client: ClientInfo, day: str) -> BeaconRecord:
        """The record for `beacon`: every field but the version and the nonce."""
        fields = beacon.model_dump(exclude={"v", "nonce"})
        return cls(day=day, client=client, **fields)


NEVER_STORED: Final[tuple[str, ...]] = (
    "IP address", "room name", "User-Agent string", "client-hint strings", "any per-user or "
    "per-device id", "time of day (only the UTC day is kept)",
)


def beacon_json_schema(*, raw_max_age_hours: float = 48.0,
                       retention_days: int = 400) -> dict[str, Any]:
    """The JSON Schema of `Beacon`, plus what the server derives and what it never keeps.

    Args:
        raw_max_age_hours: how long raw beacons live in the stream (told to readers).
        retention_days: how long day aggregates are kept (told to readers).

    Returns:
        A JSON Schema (draft 2020-12) document with the extension keys
        `x-parley-derived` (fields the server adds from request headers) and
        `x-parley-never-stored` (what is dropped on arrival).
    """
    schema = Beacon.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "parley:beacon:v1"
    derived = ClientInfo.model_json_schema()
    schema["x-parley-derived"] = {
        "source": "User-Agent and Sec-CH-UA* request headers, read then dropped",
        "properties": {
            **derived["properties"],
            "day": {"type": "string", "format": "date",
                    "description": "UTC day the beacon arrived on (no time of day)."},
        },
    }
    schema["x-parley-never-stored"] = list(NEVER_STORED)
    schema["x-parley-raw-max-age-hours"] = raw_max_age_hours
    schema["x-parley-aggregate-retention-days"] = retention_days
    return schema
