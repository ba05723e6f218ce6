"""The sans-I/O forwarding core: demux, RTP rewriting, retransmission cache, RTCP handling.

Nothing here touches a socket or a clock; every method takes `now`.
"""

from .demux import Kind, classify
from .router import Counters, PeerMedia, RoomForwarder, Slot

__all__ = ["Counters", "Kind", "PeerMedia", "RoomForwarder", "Slot", "classify"]
