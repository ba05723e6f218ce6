"""The census of rooms and calls: replica shares that sum to whole rooms."""

from __future__ import annotations

from services.signaling.census import Census, census


def test_census_no_rooms_is_zero() -> None:
    assert census({}, {}) == Census(0.0, 0.0)


def test_census_room_alone_is_a_room_not_a_call() -> None:
    assert census({"r1": ["a"]}, {"r1": {"a"}}) == Census(1.0, 0.0)


def test_census_split_room_sums_to_one_over_replicas() -> None:
    members = {"r1": {"a", "b", "c"}}
    one = census({"r1": ["a"]}, members)
    two = census({"r1": ["b", "c"]}, members)
    total = one + two
    assert abs(total.rooms - 1.0) < 1e-9
    assert abs(total.calls - 1.0) < 1e-9


def test_census_pending_member_without_socket_lowers_the_share() -> None:
    # "b" joined through rooms but has no socket anywhere yet: the room is 1/2 counted here
    assert census({"r1": ["a"]}, {"r1": {"a", "b"}}) == Census(0.5, 0.5)


def test_census_expired_room_and_stale_local_peer_not_counted() -> None:
    assert census({"r1": ["a"], "r2": ["x"]}, {"r1": set(), "r2": {"y"}}) == Census(0.0, 0.0)
