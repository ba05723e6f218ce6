"""Unit tests of the per-socket state machine: join, routing effects, limits, timers."""

from __future__ import annotations

import json

from services.common.hashing import room_key
from services.common.tokens import issue_join_token
from services.signaling import protocol as p
from services.signaling.session import (
    Authorize,
    Close,
    Depart,
    Limits,
    Publish,
    Send,
    Session,
    SfuForward,
    State,
)

KEY = "token-key-for-tests-0123456789abcdef"
HASH_KEY = "hash-key-for-tests"
T0 = 1_700_000_000.0
RK = room_key(HASH_KEY, "blue-room")


def token(room: str = "blue-room", peer: str = "peer-a", *, now: float = T0,
          ttl: int = 120) -> str:
    return issue_join_token(KEY, room=room, room_key=room_key(HASH_KEY, room), peer_id=peer,
                            ttl=ttl, now=now)


def join_frame(**extra: object) -> str:
    return json.dumps({"type": "join", "token": token(), "room": "blue-room", **extra})


def new_session(**limits: float) -> Session:
    return Session(limits=Limits(**limits), token_key=KEY, now=T0)  # type: ignore[arg-type]


def joined_session(peers: set[str] | None = None, **limits: float) -> Session:
    s = new_session(**limits)
    [eff] = s.receive(join_frame(), now=T0)
    assert isinstance(eff, Authorize)
    s.joined(peer_id="peer-a", room_key=RK, peers=peers if peers is not None
             else {"peer-a", "peer-b"})
    return s


def error_of(effects: list[object]) -> dict[str, object]:
    [eff] = effects
    assert isinstance(eff, Send)
    doc = json.loads(eff.frame)
    assert doc["type"] == "error"
    return doc  # type: ignore[no-any-return]


def test_session_join_authorizes_with_claims() -> None:
    s = new_session()
    [eff] = s.receive(join_frame(media={"audio": False, "video": True, "screen": False}),
                      now=T0 + 1)
    assert isinstance(eff, Authorize)
    assert eff.claims.peer_id == "peer-a"
    assert eff.claims.room_key == RK
    assert eff.media == p.MediaState(audio=False)
    assert eff.resume is None
    assert s.state is State.JOINING


def test_session_join_room_name_is_normalised() -> None:
    s = new_session()
    [eff] = s.receive(json.dumps({"type": "join", "token": token(), "room": "Blue-Room"}),
                      now=T0)
    assert isinstance(eff, Authorize)


def test_session_join_without_valid_token_closes_4401() -> None:
    s = new_session()
    effects = s.receive(json.dumps({"type": "join", "token": "garbage", "room": "blue-room"}),
                        now=T0)
    assert effects == [Close(4401, "invalid token")]
    assert s.state is State.CLOSED


def test_session_join_token_signed_with_other_key_closes_4401() -> None:
    bad = issue_join_token("other-key-0123456789abcdef0123456789", room="blue-room",
                           room_key=RK, peer_id="peer-a", now=T0)
    s = new_session()
    effects = s.receive(json.dumps({"type": "join", "token": bad, "room": "blue-room"}), now=T0)
    assert effects == [Close(4401, "invalid token")]


def test_session_join_expired_token_closes_4401() -> None:
    s = new_session()
    effects = s.receive(join_frame(), now=T0 + 121)
    assert effects == [Close(4401, "token expired")]


def test_session_join_other_rooms_token_closes_4403() -> None:
    s = new_session()
    frame = json.dumps({"type": "join", "token": token(room="red-room"), "room": "blue-room"})
    assert s.receive(frame, now=T0) == [Close(4403, "token is for another room")]


def test_session_join_invalid_room_name_closes_4400() -> None:
    s = new_session()
    frame = json.dumps({"type": "join", "token": token(), "room": "no spaces here"})
    assert s.receive(frame, now=T0) == [Close(4400, "invalid room name")]


def test_session_resume_accepts_expired_token() -> None:
    s = new_session()
    [eff] = s.receive(join_frame(resume={"peer_id": "peer-a", "key": "k"}), now=T0 + 3600)
    assert isinstance(eff, Authorize)
    assert eff.resume == p.ResumeRequest(peer_id="peer-a", key="k")


def test_session_resume_of_another_peer_closes_4401() -> None:
    s = new_session()
    effects = s.receive(join_frame(resume={"peer_id": "peer-z", "key": "k"}), now=T0)
    assert effects == [Close(4401, "resume peer id does not match the token")]


def test_session_message_before_join_is_an_error() -> None:
    s = new_session()
    doc = error_of(s.receive('{"type":"chat","text":"hi"}', now=T0))
    assert doc["code"] == "not-joined"
    assert doc["ref"] == "chat"
    assert s.state is State.AWAITING_JOIN


def test_session_ping_before_join_gets_pong() -> None:
    assert new_session().receive('{"type":"ping"}', now=T0) == [Send(p.PONG_FRAME)]


def test_session_join_timeout_closes_4408() -> None:
    s = new_session(join_timeout=10.0)
    assert s.tick(T0 + 9.9) == []
    assert s.tick(T0 + 10.0) == [Close(4408, "join timeout")]


def test_session_idle_timeout_closes_joined_socket() -> None:
    s = joined_session(idle_timeout=45.0)
    s.receive('{"type":"ping"}', now=T0 + 30)
    assert s.tick(T0 + 74) == []
    assert s.tick(T0 + 75) == [Close(4408, "idle timeout")]
    assert not s.departed


def test_session_signal_publishes_to_one_peer() -> None:
    s = joined_session()
    [eff] = s.receive(json.dumps({"type": "signal", "to": "peer-b", "data": {
        "description": {"type": "answer", "sdp": "v=0"}}}), now=T0)
    assert isinstance(eff, Publish)
    assert eff.to == "peer-b"
    assert json.loads(eff.frame) == {"type": "signal", "from": "peer-a", "data": {
        "description": {"type": "answer", "sdp": "v=0"}}}


def test_session_signal_to_unknown_peer_is_an_error() -> None:
    s = joined_session()
    doc = error_of(s.receive('{"type":"signal","to":"peer-x","data":{"candidate":null}}',
                             now=T0))
    assert doc == {"type": "error", "code": "unknown-peer", "message": "no such peer in the room",
                   "ref": "signal"}


def test_session_signal_to_self_is_an_error() -> None:
    s = joined_session()
    doc = error_of(s.receive('{"type":"signal","to":"peer-a","data":{"candidate":null}}',
                             now=T0))
    assert doc["code"] == "unknown-peer"


def test_session_view_is_live() -> None:
    view: set[str] = {"peer-a"}
    s = joined_session(peers=view)
    frame = '{"type":"signal","to":"peer-c","data":{"candidate":null}}'
    assert error_of(s.receive(frame, now=T0))["code"] == "unknown-peer"
    view.add("peer-c")
    [eff] = s.receive(frame, now=T0)
    assert isinstance(eff, Publish)


def test_session_media_state_broadcast_carries_media() -> None:
    s = joined_session()
    [eff] = s.receive('{"type":"media-state","audio":false,"video":true,"screen":true}', now=T0)
    assert isinstance(eff, Publish)
    assert eff.to is None
    assert eff.media == p.MediaState(audio=False, video=True, screen=True)
    assert json.loads(eff.frame) == {"type": "media-state", "from": "peer-a", "audio": False,
                                     "video": True, "screen": True}


def test_session_chat_broadcast_has_time() -> None:
    s = joined_session()
    [eff] = s.receive('{"type":"chat","text":"hello"}', now=T0 + 0.5)
    assert isinstance(eff, Publish)
    assert json.loads(eff.frame) == {"type": "chat", "from": "peer-a", "text": "hello",
                                     "at": T0 + 0.5}


def test_session_leave_departs_and_closes_1000() -> None:
    s = joined_session()
    assert s.receive('{"type":"leave"}', now=T0) == [Depart(), Close(1000, "bye")]
    assert s.departed
    assert s.receive('{"type":"ping"}', now=T0) == []


def test_session_second_join_is_an_error() -> None:
    s = joined_session()
    doc = error_of(s.receive(join_frame(), now=T0))
    assert (doc["code"], doc["message"]) == ("bad-message", "already joined")


def test_session_malformed_message_error_keeps_socket() -> None:
    s = joined_session()
    assert error_of(s.receive("{oops", now=T0))["code"] == "bad-message"
    assert error_of(s.receive('{"type":"dance"}', now=T0))["code"] == "unknown-type"
    assert s.state is State.JOINED


def test_session_oversized_message_error_then_1009() -> None:
    s = joined_session(max_message_bytes=1024, abuse_burst=12.0, abuse_rate=0.0)
    big = json.dumps({"type": "chat", "text": "x" * 1500})
    assert error_of(s.receive(big, now=T0))["code"] == "too-large"
    assert error_of(s.receive(big, now=T0))["code"] == "too-large"
    assert s.receive(big, now=T0) == [Close(1009, "messages too big")]


def test_session_flood_rate_limited_then_4429() -> None:
    s = joined_session(rate=1.0, burst=5.0, abuse_burst=3.0, abuse_rate=0.0)
    frame = '{"type":"ping"}'
    for _ in range(4):  # the join took one token
        assert s.receive(frame, now=T0) == [Send(p.PONG_FRAME)]
    codes = [error_of(s.receive(frame, now=T0))["code"] for _ in range(3)]
    assert codes == ["rate-limited"] * 3
    assert s.receive(frame, now=T0) == [Close(4429, "rate limit exceeded")]


def test_session_rate_recovers_over_time() -> None:
    s = joined_session(rate=1.0, burst=1.0, abuse_burst=10.0)
    assert error_of(s.receive('{"type":"ping"}', now=T0))["code"] == "rate-limited"
    assert s.receive('{"type":"ping"}', now=T0 + 1.0) == [Send(p.PONG_FRAME)]


def test_session_going_away_closes_1001_without_departing() -> None:
    s = joined_session()
    assert s.going_away() == [Close(1001, "server going away")]
    assert not s.departed
    assert s.going_away() == []


def test_session_reject_maps_close_code() -> None:
    from services.signaling.errors import NoPlace

    s = new_session()
    s.receive(join_frame(), now=T0)
    assert s.reject(NoPlace("full")) == [Close(4409, "full")]


def test_session_membership_ended_closes_4410_and_departs() -> None:
    s = joined_session()
    assert s.membership_ended() == [Depart(), Close(4410, "membership ended")]
    assert s.state is State.CLOSED and s.departed
    assert s.membership_ended() == []


def test_session_membership_ended_before_join_does_nothing() -> None:
    s = new_session()
    assert s.membership_ended() == []
    assert s.state is State.AWAITING_JOIN


def test_session_media_state_relays_a_cleaned_name_not_to_presence() -> None:
    s = joined_session()
    frame = json.dumps({"type": "media-state", "audio": True, "video": True, "screen": False,
                        "name": "  Ada\u202e\u0000  Lovelace " + "x" * 60})
    [eff] = s.receive(frame, now=T0)
    assert isinstance(eff, Publish)
    assert eff.media == p.MediaState()
    assert json.loads(eff.frame)["name"] == ("Ada Lovelace " + "x" * 60)[:40]


def test_session_media_state_name_too_long_is_a_bad_message() -> None:
    s = joined_session()
    frame = json.dumps({"type": "media-state", "audio": True, "video": True, "screen": False,
                        "name": "x" * 201})
    effects = s.receive(frame, now=T0)
    assert not any(isinstance(e, Publish) for e in effects)
    assert any('"bad-message"' in getattr(e, "frame", "") for e in effects)


def test_session_sfu_request_is_forwarded_only_once_joined() -> None:
    frame = json.dumps({"type": "sfu", "ticket": "t", "subscribe": {"peer-b": 0}})
    [eff] = joined_session().receive(frame, now=T0 + 1)
    assert isinstance(eff, SfuForward)
    assert eff.request.subscribe == {"peer-b": 0}
    assert error_of(new_session().receive(frame, now=T0))["code"] == "not-joined"
def test_session_chat_with_id_is_relayed_then_acknowledged() -> None:
    s = joined_session()
    publish, ack = s.receive('{"type":"chat","text":"hello","id":"c-1"}', now=T0 + 0.5)
    assert isinstance(publish, Publish) and isinstance(ack, Send)
    assert json.loads(publish.frame) == {"type": "chat", "from": "peer-a", "text": "hello",
                                         "at": T0 + 0.5, "id": "c-1"}
    assert json.loads(ack.frame) == {"type": "chat-ack", "id": "c-1"}


def test_session_chat_bad_id_is_refused() -> None:
    s = joined_session()
    [eff] = s.receive('{"type":"chat","text":"hello","id":"no spaces"}', now=T0)
    assert isinstance(eff, Send) and eff.error == "bad-message"
