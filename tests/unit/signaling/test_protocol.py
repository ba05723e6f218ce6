"""Unit tests of the wire protocol: parsing client frames, encoding server messages."""

from __future__ import annotations

import json

import pytest

from services.signaling import protocol as p
from services.signaling.errors import BadMessage, TooLarge, UnknownType

OFFER = {"type": "signal", "to": "peer-b",
         "data": {"description": {"type": "offer", "sdp": "v=0\r\n"}}}


def test_parse_client_join_with_resume() -> None:
    msg = p.parse_client(json.dumps({"type": "join", "token": "t", "room": "r",
                                     "resume": {"peer_id": "abc", "key": "k"}}))
    assert isinstance(msg, p.Join)
    assert msg.resume == p.ResumeRequest(peer_id="abc", key="k")
    assert msg.media is None


def test_parse_client_signal_offer() -> None:
    msg = p.parse_client(json.dumps(OFFER))
    assert isinstance(msg, p.Signal)
    assert msg.data.wire() == {"description": {"type": "offer", "sdp": "v=0\r\n"}}


def test_parse_client_signal_end_of_candidates_keeps_null() -> None:
    msg = p.parse_client('{"type":"signal","to":"b","data":{"candidate":null}}')
    assert isinstance(msg, p.Signal)
    assert msg.data.wire() == {"candidate": None}


def test_parse_client_signal_candidate_fields_forwarded() -> None:
    cand = {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0",
            "sdpMLineIndex": 0, "usernameFragment": "abcd"}
    msg = p.parse_client(json.dumps({"type": "signal", "to": "b", "data": {"candidate": cand}}))
    assert isinstance(msg, p.Signal)
    assert msg.data.wire() == {"candidate": cand}


def test_parse_client_signal_both_description_and_candidate() -> None:
    with pytest.raises(BadMessage, match="exactly one"):
        p.parse_client(json.dumps({"type": "signal", "to": "b", "data": {
            "description": {"type": "offer", "sdp": ""}, "candidate": None}}))


def test_parse_client_signal_bad_peer_id() -> None:
    with pytest.raises(BadMessage) as info:
        p.parse_client(json.dumps({**OFFER, "to": "no spaces allowed"}))
    assert info.value.ref == "signal"
    assert info.value.message.startswith("signal.to:")


def test_parse_client_media_state_requires_strict_bools() -> None:
    with pytest.raises(BadMessage, match="audio"):
        p.parse_client('{"type":"media-state","audio":"yes","video":true,"screen":false}')


def test_parse_client_chat_too_long() -> None:
    with pytest.raises(BadMessage) as info:
        p.parse_client(json.dumps({"type": "chat", "text": "x" * 2001}))
    assert "x" * 20 not in info.value.message  # never echoes the text


def test_parse_client_chat_empty() -> None:
    with pytest.raises(BadMessage):
        p.parse_client('{"type":"chat","text":""}')


def test_parse_client_unknown_fields_ignored() -> None:
    assert isinstance(p.parse_client('{"type":"ping","id":7}'), p.Ping)


def test_parse_client_not_json() -> None:
    with pytest.raises(BadMessage, match="not valid JSON"):
        p.parse_client("{nope")


def test_parse_client_not_utf8_bytes() -> None:
    with pytest.raises(BadMessage):
        p.parse_client(b"\xff\xfe{}")


def test_parse_client_deeply_nested_is_bad_message() -> None:
    frame = '{"type":"chat","text":' + "[" * 5000 + "]" * 5000 + "}"
    with pytest.raises(BadMessage) as info:
        p.parse_client(frame)
    assert info.value.message == "JSON nested deeper than 32 levels"


def test_parse_client_deeply_nested_bytes_is_bad_message() -> None:
    with pytest.raises(BadMessage, match="nested deeper"):
        p.parse_client(b"[" * 5000)


def test_parse_client_brackets_inside_strings_do_not_nest() -> None:
    text = '[{\\"' + "[" * 100 + "{" * 100
    msg = p.parse_client(json.dumps({"type": "chat", "text": text}))
    assert isinstance(msg, p.Chat) and msg.text == text


@pytest.mark.parametrize(("text", "exceeds"), [
    ("[" * 32 + "]" * 32, False),
    ("[" * 33 + "]" * 33, True),
    ("[]" * 1000, False),
    ('["' + "[" * 40 + '"]', False),
    (r'["\\",' + "[" * 40, True),  # an escaped backslash ends the string
    (r'"\"[' + "[" * 40, False),  # an escaped quote does not
])
def test_json_depth_exceeds_counts_nesting_outside_strings(text: str, exceeds: bool) -> None:
    assert p.json_depth_exceeds(text) is exceeds


def test_parse_client_not_an_object() -> None:
    with pytest.raises(BadMessage, match="JSON object"):
        p.parse_client("[1, 2]")


def test_parse_client_missing_type() -> None:
    with pytest.raises(BadMessage, match="type"):
        p.parse_client('{"to": "x"}')


def test_parse_client_unknown_type() -> None:
    with pytest.raises(UnknownType) as info:
        p.parse_client('{"type":"welcome"}')
    assert info.value.ref == "welcome"
    assert info.value.code == "unknown-type"


def test_parse_client_too_large_text() -> None:
    with pytest.raises(TooLarge):
        p.parse_client(json.dumps({"type": "chat", "text": "x" * 100}), max_bytes=50)


def test_parse_client_too_large_counts_utf8_bytes() -> None:
    frame = json.dumps({"type": "chat", "text": "é" * 30}, ensure_ascii=False)
    assert len(frame) < 80 < len(frame.encode())
    with pytest.raises(TooLarge):
        p.parse_client(frame, max_bytes=80)


def test_encode_signal_uses_from_alias() -> None:
    out = p.SignalOut.model_construct(from_="a", data={"candidate": None})
    assert json.loads(p.encode(out)) == {"type": "signal", "from": "a",
                                         "data": {"candidate": None}}


def test_encode_error_omits_missing_ref() -> None:
    assert json.loads(p.error_frame("bad-message", "x")) == {
        "type": "error", "code": "bad-message", "message": "x"}


def test_encode_welcome_round_trip() -> None:
    welcome = p.Welcome(peer_id="a", peers=[p.PeerInfo(peer_id="b")], resume_key="k",
                        ping_interval=15.0)
    back = p.parse_server(p.encode(welcome))
    assert back == welcome
    assert json.loads(p.encode(welcome))["peers"] == [
        {"peer_id": "b", "media": {"audio": True, "video": True, "screen": False}}]


def test_pong_frame_is_a_pong() -> None:
    assert isinstance(p.parse_server(p.PONG_FRAME), p.Pong)


def test_room_state_out_encodes_only_the_lock() -> None:
    assert json.loads(p.encode(p.RoomStateOut(locked=True))) == {"type": "room-state",
                                                                 "locked": True}
    assert p.parse_server('{"type":"room-state","locked":false}') == p.RoomStateOut(locked=False)


def test_parse_client_sfu_request() -> None:
    msg = p.parse_client('{"type":"sfu","ticket":"t","description":{"type":"offer","sdp":"v=0"},'
                         '"subscribe":{"peer-b":3}}')
    assert isinstance(msg, p.SfuRequest)
    assert msg.subscribe == {"peer-b": 3}
    with pytest.raises(BadMessage):
        p.parse_client('{"type":"sfu","ticket":"t","subscribe":{"peer-b":64}}')
    with pytest.raises(BadMessage):
        p.parse_client('{"type":"sfu","ticket":"t","subscribe":{"bad id!":1}}')


def test_encode_sfu_and_media_path() -> None:
    assert p.encode(p.SfuOut()) == '{"type":"sfu","ok":true}'
    assert p.encode(p.MediaPathOut(path="sfu")) == '{"type":"media-path","path":"sfu"}'
