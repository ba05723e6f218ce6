"""Presence behaviour cases, run against `MemoryPresence` (unit) and `RedisPresence` (integration).

Each case takes a fresh presence built with `DEADLINES` and a fresh room key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.signaling.presence import Presence, PresenceRecord
from services.signaling.protocol import MediaState
from services.signaling.resume import Deadlines, ResumeOutcome, hash_resume_key

DEADLINES = Deadlines(grace=20.0, heartbeat=5.0)
T0 = 1_700_000_000.0
Case = Callable[[Presence, str], Awaitable[None]]


def record(conn: str, key: str = "key-1", *, media: MediaState | None = None) -> PresenceRecord:
    return PresenceRecord(conn=conn, replica="r1", media=media or MediaState(),
                          resume=hash_resume_key(key))


async def attach_then_snapshot(pr: Presence, rk: str) -> None:
    assert await pr.attach(rk, "a", record("c1"), now=T0)
    assert await pr.attach(rk, "b", record("c2", media=MediaState(video=False)), now=T0)
    snap = await pr.snapshot(rk, now=T0 + 1)
    assert sorted(snap) == ["a", "b"]
    assert snap["b"].media == MediaState(video=False)
    assert snap["a"].conn == "c1"


async def attach_twice_refused_while_live(pr: Presence, rk: str) -> None:
    assert await pr.attach(rk, "a", record("c1"), now=T0)
    assert not await pr.attach(rk, "a", record("c2"), now=T0 + 1)


async def resume_within_grace(pr: Presence, rk: str) -> None:
    await pr.attach(rk, "a", record("c1", "old", media=MediaState(audio=False)), now=T0)
    assert await pr.detach(rk, "a", conn="c1", now=T0 + 1)
    res = await pr.resume(rk, "a", presented_key="old", conn="c2", replica="r2",
                          new_hash=hash_resume_key("new"), now=T0 + 20.5)
    assert res.outcome is ResumeOutcome.RESUMED
    assert res.old_conn == "c1"
    assert res.media == MediaState(audio=False)
    snap = await pr.snapshot(rk, now=T0 + 21.5)  # the new deadline is a live one
    assert snap["a"].conn == "c2"
    assert snap["a"].replica == "r2"


async def resume_key_rotates(pr: Presence, rk: str) -> None:
    await pr.attach(rk, "a", record("c1", "old"), now=T0)
    await pr.resume(rk, "a", presented_key="old", conn="c2", replica="r1",
                    new_hash=hash_resume_key("new"), now=T0 + 1)
    res = await pr.resume(rk, "a", presented_key="old", conn="c3", replica="r1",
                          new_hash=hash_resume_key("x"), now=T0 + 2)
    assert res.outcome is ResumeOutcome.BAD_KEY


async def resume_wrong_key(pr: Presence, rk: str) -> None:
    await pr.attach(rk, "a", record("c1", "right"), now=T0)
    res = await pr.resume(rk, "a", presented_key="wrong", conn="c2", replica="r1",
                          new_hash=hash_resume_key("n"), now=T0 + 1)
    assert res.outcome is ResumeOutcome.BAD_KEY
    assert (await pr.snapshot(rk, now=T0 + 1))["a"].conn == "c1"


async def resume_after_grace_is_gone(pr: Presence, rk: str) -> None:
    await pr.attach(rk, "a", record("c1", "k"), now=T0)
    await pr.detach(rk, "a", conn="c1", now=T0 + 1)
    res = await pr.resume(rk, "a", presented_key="k", conn="c2", replica="r1",
                          new_hash=hash_resume_key("n"), now=T0 + 21.5)
    assert res.outcome is ResumeOutcome.GONE


async def resume_unknown_peer_is_gone(pr: Presence, rk: str) -> None:
    res = await pr.resume(rk, "nobody", presented_key="k", conn="c2", replica="r1",
                          new_hash=hash_resume_key("n"), now=T0)
    assert res.outcome is ResumeOutcome.GONE


async def detach_by_replaced_connection_is_ignored(pr: Presence, rk: str) -> None:
    await pr.attach(rk, "a", record("c1", "k"), now=T0)
    await pr.resume(rk, "a", presented_key="k", conn="c2", replica="r1",
                    new_hash=hash_resume_key("n"), now=T0 + 1)
    assert not await pr.detach(rk, "a", conn="c1", now=T0 + 2)
    assert not await pr.remove(rk, "a", conn="c1")
    assert await pr.reap(rk, now=T0 + 25) == []  # still on the live deadline of c2


async def dropped_peer_reaped_after_grace(pr: Presence, rk: str) -> None:
    await pr.attach(rk, "a", record("c1"), now=T0)
    await pr.attach(rk, "b", record("c2"), now=T0)
    await pr.detach(rk, "a", conn="c1", now=T0 + 1)
    assert await pr.reap(rk, now=T0 + 20.9) == []
    assert await pr.reap(rk, now=T0 + 21.1) == ["a"]
    assert await pr.reap(rk, now=T0 + 21.2) == []  # only one reaper gets it
    assert sorted(await pr.snapshot(rk, now=T0 + 21.2)) == ["b"]


async def heartbeat_keeps_live_and_reaps_dead(pr: Presence, rk: str) -> None:
    await pr.attach(rk, "a", record("c1"), now=T0)  # held by a replica that keeps beating
    await pr.attach(rk, "b", record("c2"), now=T0)  # held by a replica that died at T0
    beat = await pr.heartbeat({rk: ["a"]}, now=T0 + 20)
    assert (beat.reaped, beat.lost) == ({}, {})
    beat = await pr.heartbeat({rk: ["a"]}, now=T0 + 25.5)
    assert (beat.reaped, beat.lost) == ({rk: ["b"]}, {})
    assert sorted(await pr.snapshot(rk, now=T0 + 40)) == ["a"]


async def heartbeat_reports_local_peers_presence_lost(pr: Presence, rk: str) -> None:
    # "a" was reaped by another replica while this one (holding its socket) was cut off
    await pr.attach(rk, "a", record("c1"), now=T0)
    await pr.attach(rk, "b", record("c2"), now=T0)
    assert await pr.reap(rk, now=T0 + 26) == ["a", "b"]
    await pr.attach(rk, "c", record("c3"), now=T0 + 26)
    beat = await pr.heartbeat({rk: ["a", "c"], "other-room": []}, now=T0 + 27)
    assert beat.lost == {rk: ["a"]}
    assert beat.reaped == {}


async def heartbeat_does_not_resurrect(pr: Presence, rk: str) -> None:
    await pr.attach(rk, "a", record("c1"), now=T0)
    await pr.remove(rk, "a", conn="c1")
    beat = await pr.heartbeat({rk: ["a"]}, now=T0 + 1)
    assert await pr.snapshot(rk, now=T0 + 1) == {}
    assert beat.lost == {rk: ["a"]}


async def remove_then_absent(pr: Presence, rk: str) -> None:
    await pr.attach(rk, "a", record("c1"), now=T0)
    assert await pr.remove(rk, "a", conn="c1")
    assert await pr.snapshot(rk, now=T0) == {}
    assert not await pr.remove(rk, "a", conn="c1")


async def set_media_recorded(pr: Presence, rk: str) -> None:
    await pr.attach(rk, "a", record("c1"), now=T0)
    muted = MediaState(audio=False, video=False, screen=True)
    assert await pr.set_media(rk, "a", conn="c1", media=muted)
    assert not await pr.set_media(rk, "a", conn="other", media=MediaState())
    assert (await pr.snapshot(rk, now=T0))["a"].media == muted


CASES: list[Case] = [
    attach_then_snapshot, attach_twice_refused_while_live, resume_within_grace,
    resume_key_rotates, resume_wrong_key, resume_after_grace_is_gone,
    resume_unknown_peer_is_gone, detach_by_replaced_connection_is_ignored,
    dropped_peer_reaped_after_grace, heartbeat_keeps_live_and_reaps_dead,
    heartbeat_reports_local_peers_presence_lost,
    heartbeat_does_not_resurrect, remove_then_absent, set_media_recorded,
]
