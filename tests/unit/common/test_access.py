"""The permission table and its renderings (pure; the servers are in tests/integration/dev)."""

from __future__ import annotations

import pytest

from services.common import access, subjects


def test_nats_grants_only_rooms_appends_and_only_logpurge_manages_the_diag_log() -> None:
    grants = access.nats_grants()
    writers = [u for u, g in grants.items() if subjects.DIAG_ALL in g.publish]
    purgers = [u for u, g in grants.items()
               if "$JS.API.STREAM.PURGE.PARLEY_DIAG" in g.publish]
    key_writers = [u for u, g in grants.items()
                   if any(p.startswith("$KV.PARLEY_DIAG_KEYS.") for p in g.publish)]
    assert writers == ["rooms"]
    assert purgers == ["logpurge"]
    assert key_writers == ["rooms", "logpurge"]  # rooms writes a day's pair, reads no key
    key_readers = [u for u, g in grants.items()
                   if any(p.startswith(("$JS.API.STREAM.MSG.GET.KV_PARLEY_DIAG_KEYS",
                                        "$JS.API.DIRECT.GET.KV_PARLEY_DIAG_KEYS"))
                          for p in g.publish)]
    assert key_readers == ["logpurge"]
    assert grants["rooms"].publish_deny == ("$KV.PARLEY_DIAG_KEYS.logpurge-last-purge",)


def test_nats_grants_no_service_sends_erasures_or_heartbeats_but_relays() -> None:
    grants = access.nats_grants()
    assert not [u for u, g in grants.items() if subjects.logpurge_erase() in g.publish]
    heartbeaters = [u for u, g in grants.items()
                    if any(p.startswith("parley.relay.heartbeat.") for p in g.publish)]
    assert heartbeaters == ["relay"]
    room_users = [u for u, g in grants.items()
                  if subjects.ROOMS_ALL in g.publish + g.subscribe]
    assert room_users == ["signaling"]
    room_publishers = [u for u, g in grants.items()
                       if any(p.startswith("parley.room.") for p in g.publish)]
    assert room_publishers == ["rooms", "signaling"]
    assert subjects.ROOMS_MEMBERS in grants["rooms"].publish  # slot changes only


def test_nats_grants_every_user_subscribes_to_its_own_inbox_only() -> None:
    for user, g in access.nats_grants().items():
        inboxes = [s for s in g.subscribe if s.startswith("_INBOX")]
        assert inboxes == [f"_INBOX.{user}.>"], user


def test_nats_grants_relay_id_limits_the_relay_to_its_own_subjects() -> None:
    relay = access.nats_grants(relay_id="r-1")["relay"]
    assert relay.publish == ("parley.relay.heartbeat.r-1",)
    # its own control requests and its own trace hints (from rooms), nothing else
    assert relay.subscribe == ("parley.relay.control.r-1", "parley.relay.trace.r-1",
                               "_INBOX.relay.>")
    assert access.nats_grants(relay_id="r-1")["operator"].publish == (
        "parley.relay.control.*", "parley.sfu.control.*")


def test_nats_grants_sfu_ids_limit_the_sfu_to_its_own_subjects() -> None:
    sfu = access.nats_grants(sfu_ids=["s-1", "s-2"])["sfu"]
    assert sfu.publish == ("parley.sfu.heartbeat.s-1", "parley.sfu.heartbeat.s-2")
    assert sfu.subscribe == ("parley.sfu.session.s-1", "parley.sfu.session.s-2",
                             "parley.sfu.control.s-1", "parley.sfu.control.s-2",
                             "_INBOX.sfu.>")
    assert sfu.allow_responses
    assert access.nats_grants()["sfu"].subscribe[:2] == ("parley.sfu.session.*",
                                                         "parley.sfu.control.*")
    assert "parley.sfu.session.*" in access.nats_grants()["signaling"].publish


def test_nats_grants_admin_only_when_asked() -> None:
    assert access.ADMIN not in access.nats_grants()
    assert access.nats_grants(admin=True)[access.ADMIN].subscribe == (">",)
    assert access.ADMIN not in access.render_nats_authorization()


def test_render_nats_authorization_refers_to_env_passwords() -> None:
    text = access.render_nats_authorization()
    assert text.count("password: $PARLEY_NATS_PASSWORD_") == len(access.NATS_USERS)
    assert '"$JS.API.STREAM.PURGE.PARLEY_DIAG"' in text
    assert text.count("allow_responses: true") == 2
    assert {u for u, g in access.nats_grants().items() if g.allow_responses} == {
        "logpurge", "sfu"}  # the only services that answer requests


def test_render_redis_acl_default_off_and_no_dangerous_commands() -> None:
    text = access.render_redis_acl(lambda u: f"h-{u}")
    lines = text.splitlines()
    assert lines[0] == "user default off resetkeys resetchannels -@all"
    assert lines[1] == ("user rooms on #h-rooms resetkeys ~parley:room:* resetchannels -@all "
                        "+@read +@write +evalsha +eval +script|load +script|exists +ping "
                        "-@dangerous")
    assert lines[-1] == "user health on #h-health resetkeys resetchannels -@all +ping"
    for line in lines[1:]:
        assert line.endswith("-@dangerous") or line.endswith("+ping")


def test_credentials_repr_hides_passwords() -> None:
    creds = access.Credentials.generate()
    assert repr(creds) == "Credentials(<redacted>)"
    assert set(creds.nats) == set(access.NATS_USERS)
    assert set(creds.redis) == set(access.REDIS_USERS)


def test_nats_env_value_quotes() -> None:
    assert access.nats_env_value("2026-01-01") == '"2026-01-01"'
    with pytest.raises(ValueError, match="URL-safe"):
        access.nats_env_value('a"b')


def test_with_userinfo_every_url_and_replaces_old_userinfo() -> None:
    assert access.with_userinfo("nats://a:1,nats://tok@b:2", "rooms", "p/w") == \
        "nats://rooms:p%2Fw@a:1,nats://rooms:p%2Fw@b:2"


def test_url_user_and_inbox_prefix() -> None:
    assert access.url_user("nats://rooms:pw@h:4222") == "rooms"
    assert access.url_user("nats://token@h:4222") is None
    assert access.url_user("nats://h:4222") is None
    assert access.inbox_prefix_for("nats://metrics:pw@h,nats://metrics:pw@i") == \
        "_INBOX.metrics"
    assert access.inbox_prefix_for("nats://sometoken@h") == "_INBOX"
    assert access.inbox_prefix_for("nats://bad.user:pw@h") == "_INBOX"


def test_redact_url_hides_passwords_and_tokens() -> None:
    assert access.redact_url("nats://rooms:secret@h:1,nats://tok@i:2,nats://j:3") == \
        "nats://rooms:***@h:1,nats://***@i:2,nats://j:3"
    assert access.redact_url("redis://:pw@r:6379/0") == "redis://***@r:6379/0"


def test_nats_grants_several_relay_ids_each_own_subjects() -> None:
    relay = access.nats_grants(relay_id=["r-1", "r-2"])["relay"]
    assert relay.publish == ("parley.relay.heartbeat.r-1", "parley.relay.heartbeat.r-2")
    assert relay.subscribe == ("parley.relay.control.r-1", "parley.relay.control.r-2",
                               "parley.relay.trace.r-1", "parley.relay.trace.r-2",
                               "_INBOX.relay.>")
