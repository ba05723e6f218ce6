"""How many rooms and calls are in progress, counted so that replicas can simply be summed.

A room's peers may sit on several replicas. Each replica counts, per room it holds sockets
of, its share: its own member peers over all of the room's members (from room state). The
shares of one room add up to one over the replicas, so `sum()` in Prometheus gives the
number of rooms, with no replica knowing the others. A call is a room with two or more
members. Nothing here names a room: only counts leave.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final

#: Members from which a room is a call (someone is talking to someone).
CALL_MEMBERS: Final[int] = 2


@dataclass(frozen=True, slots=True)
class Census:
    """This replica's share of the rooms and of the calls in progress."""

    rooms: float = 0.0
    calls: float = 0.0

    def __add__(self, other: Census) -> Census:
        return Census(self.rooms + other.rooms, self.calls + other.calls)


def census(local: Mapping[str, Collection[str]],
           members: Mapping[str, Collection[str]]) -> Census:
    """This replica's share of rooms and calls.

    Args:
        local: room key -> peers with a socket on this replica.
        members: room key -> every member of the room (any replica), from room state.

    Returns:
        Per room, the local peers that are members over all members, summed; the same sum
        over rooms with at least `CALL_MEMBERS` members for calls.
    """
    rooms = calls = 0.0
    for rk, peers in local.items():
        everyone = set(members.get(rk, ()))
        if not everyone:
            continue
        share = len(everyone.intersection(peers)) / len(everyone)
        rooms += share
        if len(everyone) >= CALL_MEMBERS:
            calls += share
    return Census(rooms, calls)
