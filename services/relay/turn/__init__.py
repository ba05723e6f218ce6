"""Sans-I/O TURN core (RFC 8656): allocations, permissions, channels, auth, peer policy."""

from __future__ import annotations

from .allocation import Allocation, Client
from .channeldata import StreamFramer, pack_channel_data, unpack_channel_data
from .policy import PeerPolicy, Verdict, parse_networks
from .server import CloseRelay, OpenRelay, Output, ServerConfig, Stats, ToClient, ToPeer, TurnServer

__all__ = [
    "Allocation",
    "Client",
    "CloseRelay",
    "OpenRelay",
    "Output",
    "PeerPolicy",
    "ServerConfig",
    "Stats",
    "StreamFramer",
    "ToClient",
    "ToPeer",
    "TurnServer",
    "Verdict",
    "pack_channel_data",
    "parse_networks",
    "unpack_channel_data",
]
