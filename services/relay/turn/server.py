"""The TURN server state machine (RFC 8656), sans I/O.

`TurnServer` takes bytes, addresses and `now` and returns outputs: bytes to a client,
bytes to a peer from a relayed address, and requests to open or close a relayed socket.
It owns no socket and reads no clock; the asyncio shell (`services.relay.worker`) does.
Allocate is two-step: the core answers `OpenRelay`, the shell binds a socket from its
port range and reports back with `relay_opened` (or `relay_failed`), which yields the
response. Hot paths (`channel_to_peer`, `peer_to_client`) return one output or None.

In-process delivery (`ServerConfig.local_delivery`): when a client sends to a peer address
that is another allocation's relayed address held by this same server, the packet is
handed to that allocation here instead of crossing the kernel twice more (out of A's
relayed socket, into B's). Every rule of the kernel path still applies, in the same order:
A's permission and bandwidth (and, for a Send indication, the deny list), then B's
permission for A's relayed IP and B's bandwidth; B gets ChannelData if it bound a channel
to A's relayed address, else a Data indication whose XOR-PEER-ADDRESS is A's relayed address.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import Any, Final, Protocol

from ..stun.attributes import Address
from ..stun.constants import (
    CHANNEL_MIN,
    FAMILY_IPV4,
    FAMILY_IPV6,
    REASONS,
    TRANSPORT_UDP,
    Attr,
    Class,
    Method,
)
from ..stun.errors import AttributeDecodeError, DecodeError
from ..stun.message import Message, build_data_indication, is_stun, parse_message, serialize
from .allocation import Allocation, Client
from .auth import Authenticator, Identity
from .meter import Meter, MeterLike
from .errors import (
    AddressFamily,
    AllocationMismatch,
    BadRequest,
    Forbidden,
    InsufficientCapacity,
    PeerFamilyMismatch,
    QuotaReached,
    RemoteError,
    StaleNonce,
    Unauthorized,
    UnknownAttribute,
    UnsupportedTransport,
    WrongCredentials,
)
from .outputs import (
    CloseRelay,
    FastRoute,
    OpenRelay,
    Output,
    ServerConfig,
    Stats,
    ToClient,
    ToPeer,
)
from .policy import PeerPolicy
from .ratelimit import RateLimiter

_TURN_METHODS: Final = frozenset(
    {Method.ALLOCATE, Method.REFRESH, Method.CREATE_PERMISSION, Method.CHANNEL_BIND}
)
_MAX_WAKE: Final[float] = 5.0

__all__ = [
    "CloseRelay",
    "OpenRelay",
    "Output",
    "ServerConfig",
    "Stats",
    "ToClient",
    "ToPeer",
    "TurnServer",
]


class PortSet(Protocol):
    """The relayed ports with a live socket (a `set`, or the shell's shared one)."""

    def add(self, port: int) -> None: ...
    def discard(self, port: int) -> None: ...
    def __contains__(self, port: object) -> bool: ...


MeterFactory = Callable[[float, float], MeterLike]


@dataclass(slots=True)
class _Pending:
    message: Message
    identity: Identity
    lifetime: float


class TurnServer:
    """All allocations of one worker, and the rules that govern them."""

    def __init__(
        self, config: ServerConfig, *, nonce_key: bytes | None = None,
        live_ports: PortSet | None = None, meter_factory: MeterFactory = Meter,
    ) -> None:
        """
        Args:
            config: what the shell was told.
            nonce_key: the key nonces are signed with (random when None).
            live_ports: where this server records the relayed ports it holds; the shell
                passes one set shared by all its workers, so that every worker lets its
                clients reach any live relayed socket of the relay and nothing else of it.
            meter_factory: makes each allocation's meter (rate, now): the Python `Meter`,
                or the compiled one when the shell uses the compiled packet path.
        """
        self.meter_factory = meter_factory
        self.config = config
        self.live_ports: PortSet = live_ports if live_ports is not None else set()
        self.auth = Authenticator(
            realm=config.realm,
            secrets=list(config.secrets),
            nonce_lifetime=config.nonce_lifetime,
            nonce_key=nonce_key,
        )
        self.policy = PeerPolicy(
            relay_ips=[config.relay_ip, *config.own_ips], relay_ports=config.relay_ports,
            allow=config.allow_peer, listen_ports=config.listen_ports,
            live_ports=self.live_ports,
        )
        self.family = FAMILY_IPV6 if ":" in config.relay_ip else FAMILY_IPV4
        self.limiter = RateLimiter(config.request_rate, config.request_burst)
        self.draining = False
        self.stats = Stats()
        self._by_client: dict[Client, Allocation] = {}
        self._by_relayed: dict[Address, Allocation] = {}
        self._pending: dict[Client, _Pending] = {}
        self._user_counts: dict[str, int] = {}
        self._txid = 0
        self._next_wake = 0.0
        self._local = config.local_delivery
        #: bumped when an allocation is created or deleted: cached `FastRoute`s are stale.
        self.generation = 0

    # -- queries -------------------------------------------------------------------
    @property
    def allocation_count(self) -> int:
        """Live allocations."""
        return len(self._by_client)

    def allocation_for(self, client: Client) -> Allocation | None:
        """The allocation owned by `client`, if any."""
        return self._by_client.get(client)

    def next_wake(self) -> float:
        """When `expire` should next be called."""
        return self._next_wake

    def set_secrets(self, secrets: list[str]) -> None:
        """Replace the accepted shared secrets (rotation: current first, then previous)."""
        self.auth.secrets = secrets

    # -- client side ---------------------------------------------------------------
    def handle_client(self, client: Client, data: bytes, now: float) -> list[Output]:
        """Process one datagram or stream frame from a client (RFC 8656 §5)."""
        if not data:
            return []
        first = data[0]
        if 0x40 <= first < 0x80:
            out = self.channel_to_peer(client, data, now)
            return [out] if out is not None else []
        if not is_stun(data):
            self.stats.malformed += 1
            return []
        is_request = (data[0] & 0x01) == 0 and (data[1] & 0x10) == 0
        if is_request and not self.limiter.allow(client.address[0], now):
            self.stats.rate_limited += 1
            return []
        try:
            message = parse_message(data)
        except AttributeDecodeError as exc:
            if not is_request:
                self.stats.malformed += 1
                return []
            return [ToClient(client, self._error(exc.message, BadRequest(str(exc)), None, now))]
        except DecodeError:
            self.stats.malformed += 1
            return []
        if message.message_class is Class.REQUEST:
            return self._handle_request(client, message, now)
        if message.message_class is Class.INDICATION and message.method == Method.SEND:
            out = self._handle_send(client, message, now)
            return [out] if out is not None else []
        self.stats.dropped += 1
        return []

    def channel_to_peer(
        self, client: Client, data: bytes, now: float
    ) -> ToPeer | ToClient | None:
        """Hot path: ChannelData from a client to its bound peer (RFC 8656 §12.6).

        A `ToClient` when the peer is a relayed address of this server (in-process delivery).
        """
        alloc = self._by_client.get(client)
        if alloc is None or len(data) < 4:
            self.stats.dropped += 1
            return None
        length = (data[2] << 8) | data[3]
        channel = alloc.channels.get((data[0] << 8) | data[1])
        if channel is None or channel.expires <= now or 4 + length > len(data):
            self.stats.dropped += 1
            return None
        peer = channel.peer
        expires = alloc.permissions.get(peer[0])
        if expires is None or expires <= now or not self._spend(alloc, length, now):
            self.stats.dropped += 1
            return None
        meter = alloc.meter
        meter.packets_out += 1
        meter.bytes_out += length
        if self._local and peer in self._by_relayed:
            self.stats.local_delivered += 1
            return self.peer_to_client(peer, alloc.relayed, data[4 : 4 + length], now)
        return ToPeer(alloc.relayed, peer, data[4 : 4 + length])

    def fast_route(self, client: Client, channel_number: int, now: float) -> FastRoute | None:
        """The route ChannelData on `channel_number` from `client` takes now, for a cache.

        Only the common case: a UDP client, a live channel and permission at A and, for an
        allocation of this server, a UDP client B of the same listening socket as A (the
        cache answers B through A's socket; `Client.conn` tells a worker's sockets apart)
        with a permission for A's relayed IP and a channel bound to A's relayed address.
        Anything else stays on the Python path.
        """
        alloc = self._by_client.get(client)
        if alloc is None or client.transport != "udp":
            return None
        channel = alloc.channels.get(channel_number)
        if channel is None or channel.expires <= now:
            return None
        peer = channel.peer
        perm = alloc.permissions.get(peer[0])
        if perm is None or perm <= now:
            return None
        until = min(channel.expires, perm)
        dest = self._by_relayed.get(peer) if self._local else None
        if dest is None:
            return FastRoute(False, alloc.relayed, peer, 0, until, alloc.meter, None)
        if dest.client.transport != "udp" or dest.client.conn != client.conn:
            return None
        back = dest.peer_channels.get(alloc.relayed)
        dperm = dest.permissions.get(alloc.relayed[0])
        if back is None or back.expires <= now or dperm is None or dperm <= now:
            return None
        until = min(until, back.expires, dperm)
        return FastRoute(
            True, alloc.relayed, dest.client.address, back.number, until, alloc.meter, dest.meter
        )

    def fast_peer_route(self, relayed: Address, peer: Address, now: float) -> FastRoute | None:
        """The route a datagram from `peer` on `relayed` takes now, for a cache: ChannelData
        to a UDP client on the channel it bound to `peer`, while that and the permission live.
        """
        alloc = self._by_relayed.get(relayed)
        if alloc is None or alloc.client.transport != "udp":
            return None
        perm = alloc.permissions.get(peer[0])
        channel = alloc.peer_channels.get(peer)
        if perm is None or perm <= now or channel is None or channel.expires <= now:
            return None
        until = min(perm, channel.expires)
        return FastRoute(
            False, relayed, alloc.client.address, channel.number, until, alloc.meter, None
        )

    def _handle_send(
        self, client: Client, message: Message, now: float
    ) -> ToPeer | ToClient | None:
        """A Send indication: relay DATA to XOR-PEER-ADDRESS if permitted (RFC 8656 §11.2)."""
        alloc = self._by_client.get(client)
        payload = message.attributes.get(Attr.DATA)
        if (
            alloc is None
            or not message.peer_addresses
            or payload is None
            or message.unknown_required
        ):
            self.stats.dropped += 1
            return None
        peer = message.peer_addresses[0]
        if (
            not alloc.permitted(peer[0], now)
            or not self.policy.permits(peer)
            or not self._spend(alloc, len(payload), now)
        ):
            self.stats.dropped += 1
            return None
        meter = alloc.meter
        meter.packets_out += 1
        meter.bytes_out += len(payload)
        if self._local and peer in self._by_relayed:
            self.stats.local_delivered += 1
            return self.peer_to_client(peer, alloc.relayed, payload, now)
        return ToPeer(alloc.relayed, peer, payload)

    def client_closed(self, client: Client, now: float) -> list[Output]:
        """A stream client went away: its allocation goes with it (RFC 8656 §7)."""
        self._pending.pop(client, None)
        alloc = self._by_client.get(client)
        return self._delete(alloc) if alloc is not None else []

    # -- peer side -----------------------------------------------------------------
    def peer_to_client(
        self, relayed: Address, peer: Address, data: bytes, now: float
    ) -> ToClient | None:
        """Hot path: a datagram from `peer` on `relayed` (RFC 8656 §11.3, §12.6)."""
        alloc = self._by_relayed.get(relayed)
        if alloc is None:
            return None
        expires = alloc.permissions.get(peer[0])
        if expires is None or expires <= now or not self._spend(alloc, len(data), now):
            self.stats.dropped += 1
            return None
        meter = alloc.meter
        meter.packets_in += 1
        meter.bytes_in += len(data)
        channel = alloc.peer_channels.get(peer)
        if channel is not None and channel.expires > now:
            n = len(data)
            header = bytes((channel.number >> 8, channel.number & 0xFF, n >> 8, n & 0xFF))
            if alloc.stream and n % 4:
                return ToClient(alloc.client, header + data + b"\x00" * (-n % 4))
            return ToClient(alloc.client, header + data)
        self._txid = (self._txid + 1) & 0xFFFFFFFFFFFFFFFFFFFFFFFF
        return ToClient(
            alloc.client, build_data_indication(self._txid.to_bytes(12, "big"), peer, data)
        )

    # -- shell callbacks -----------------------------------------------------------
    def relay_opened(self, client: Client, relayed: Address, now: float) -> list[Output]:
        """The shell bound `relayed` for a pending Allocate: answer it (RFC 8656 §7.2)."""
        pending = self._pending.pop(client, None)
        if pending is None:
            return [CloseRelay(relayed)]
        ident, message = pending.identity, pending.message
        alloc = Allocation(
            client, relayed, ident.username, ident.key, ident.sha256,
            now + pending.lifetime, message.transaction_id, stream=client.transport != "udp",
            meter=self.meter_factory(self.config.bandwidth, now),
        )  # fmt: skip
        alloc.response = self._success(
            message,
            {
                Attr.XOR_RELAYED_ADDRESS: relayed,
                Attr.LIFETIME: int(pending.lifetime),
                Attr.XOR_MAPPED_ADDRESS: client.address,
            },
            ident,
        )
        self._by_client[client] = alloc
        self._by_relayed[relayed] = alloc
        self.generation += 1
        self.live_ports.add(relayed[1])
        self._user_counts[ident.username] = self._user_counts.get(ident.username, 0) + 1
        self.stats.allocations_created += 1
        self._next_wake = min(self._next_wake, alloc.expires) if self._next_wake else alloc.expires
        return [ToClient(client, alloc.response)]

    def relay_failed(self, client: Client, now: float) -> list[Output]:
        """The shell found no free relayed port: answer 508 (RFC 8656 §7.2)."""
        pending = self._pending.pop(client, None)
        if pending is None:
            return []
        error = InsufficientCapacity("no relay port")
        return [ToClient(client, self._error(pending.message, error, pending.identity, now))]

    def expire(self, now: float) -> list[Output]:
        """Delete expired allocations, permissions and channels; prune rate buckets."""
        outputs: list[Output] = []
        wake = now + _MAX_WAKE
        for alloc in list(self._by_client.values()):
            if alloc.expires <= now:
                outputs.extend(self._delete(alloc))
            else:
                wake = min(wake, alloc.expire(now))
        self.limiter.prune(now)
        self._next_wake = wake
        return outputs

    def close_all(self) -> list[Output]:
        """Delete every allocation (drain deadline reached)."""
        outputs: list[Output] = []
        for alloc in list(self._by_client.values()):
            outputs.extend(self._delete(alloc))
        return outputs

    # -- requests ------------------------------------------------------------------
    def _handle_request(self, client: Client, message: Message, now: float) -> list[Output]:
        identity: Identity | None = None
        try:
            if message.method == Method.BINDING:
                if message.unknown_required:
                    raise UnknownAttribute(unknown=message.unknown_required)
                attrs = {Attr.XOR_MAPPED_ADDRESS: client.address}
                return [ToClient(client, self._success(message, attrs, None))]
            if message.method not in _TURN_METHODS:
                raise BadRequest("unknown method")
            identity = self.auth.authenticate(message, now)
            if message.unknown_required:
                raise UnknownAttribute(unknown=message.unknown_required)
            if message.method == Method.ALLOCATE:
                return self._allocate(client, message, identity, now)
            alloc = self._by_client.get(client)
            if alloc is None:
                raise AllocationMismatch("no allocation")
            if alloc.username != identity.username:
                raise WrongCredentials("not the allocation's username")
            if message.method == Method.REFRESH:
                return self._refresh(client, alloc, message, identity, now)
            if message.method == Method.CREATE_PERMISSION:
                return self._create_permission(client, alloc, message, identity, now)
            return self._channel_bind(client, alloc, message, identity, now)
        except RemoteError as exc:
            return [ToClient(client, self._error(message, exc, identity, now))]

    def _lifetime(self, requested: int | None, *, floor: float) -> float:
        if requested is None:
            return self.config.default_lifetime
        return max(floor, min(float(requested), self.config.max_lifetime))

    def _allocate(
        self, client: Client, message: Message, ident: Identity, now: float
    ) -> list[Output]:
        """Allocate, RFC 8656 §7.2, checks in the RFC's order."""
        existing = self._by_client.get(client)
        if existing is not None:
            if existing.transaction_id == message.transaction_id:
                return [ToClient(client, existing.response)]  # retransmission
            raise AllocationMismatch("allocation exists")
        pending = self._pending.get(client)
        if pending is not None:
            if pending.message.transaction_id == message.transaction_id:
                return []
            raise AllocationMismatch("allocation in progress")
        attrs = message.attributes
        transport = attrs.get(Attr.REQUESTED_TRANSPORT)
        if transport is None:
            raise BadRequest("REQUESTED-TRANSPORT missing")
        if transport != TRANSPORT_UDP:
            raise UnsupportedTransport("only UDP relaying")
        if Attr.DONT_FRAGMENT in attrs:
            raise UnknownAttribute(unknown=[int(Attr.DONT_FRAGMENT)])
        if Attr.RESERVATION_TOKEN in attrs:
            if Attr.EVEN_PORT in attrs:
                raise BadRequest("EVEN-PORT with RESERVATION-TOKEN")
            raise InsufficientCapacity("no reservations")
        family = attrs.get(Attr.REQUESTED_ADDRESS_FAMILY)
        if family is not None and Attr.ADDITIONAL_ADDRESS_FAMILY in attrs:
            raise BadRequest("both address family attributes")
        if family is not None and family != self.family:
            raise AddressFamily("address family not served")
        if self.draining:
            raise InsufficientCapacity("draining")
        if self._user_counts.get(ident.username, 0) >= self.config.user_quota:
            raise QuotaReached("user quota")
        if len(self._by_client) + len(self._pending) >= self.config.total_quota:
            raise InsufficientCapacity("relay full")
        lifetime = self._lifetime(attrs.get(Attr.LIFETIME), floor=self.config.default_lifetime)
        self._pending[client] = _Pending(message, ident, lifetime)
        return [OpenRelay(client, even_port=Attr.EVEN_PORT in attrs)]

    def _refresh(
        self, client: Client, alloc: Allocation, message: Message, ident: Identity, now: float
    ) -> list[Output]:
        """Refresh, RFC 8656 §7.3: lifetime 0 deletes."""
        family = message.attributes.get(Attr.REQUESTED_ADDRESS_FAMILY)
        if family is not None and family != self.family:
            raise PeerFamilyMismatch("family mismatch")
        requested = message.attributes.get(Attr.LIFETIME)
        outputs: list[Output] = []
        if requested == 0:
            outputs.extend(self._delete(alloc))
            lifetime = 0.0
        else:
            lifetime = self._lifetime(requested, floor=0.0)
            alloc.expires = now + lifetime
        response = self._success(message, {Attr.LIFETIME: int(lifetime)}, ident)
        outputs.insert(0, ToClient(client, response))
        return outputs

    def _check_peer_family(self, peer: Address) -> None:
        if (FAMILY_IPV6 if ":" in peer[0] else FAMILY_IPV4) != self.family:
            raise PeerFamilyMismatch("peer family differs from relayed")

    def _create_permission(
        self, client: Client, alloc: Allocation, message: Message, ident: Identity, now: float
    ) -> list[Output]:
        """CreatePermission, RFC 8656 §9.2: all peers or none."""
        peers = message.peer_addresses
        if not peers:
            raise BadRequest("XOR-PEER-ADDRESS missing")
        for peer in peers:
            self._check_peer_family(peer)
            if not self.policy.permits_ip(peer[0]):
                raise Forbidden("peer address refused")
        new = {p[0] for p in peers} - alloc.permissions.keys()
        if len(alloc.permissions) + len(new) > self.config.max_permissions:
            raise InsufficientCapacity("too many permissions")
        for peer in peers:
            alloc.permit(peer[0], now)
        return [ToClient(client, self._success(message, {}, ident))]

    def _channel_bind(
        self, client: Client, alloc: Allocation, message: Message, ident: Identity, now: float
    ) -> list[Output]:
        """ChannelBind, RFC 8656 §12.2."""
        number = message.attributes.get(Attr.CHANNEL_NUMBER)
        if number is None or not message.peer_addresses:
            raise BadRequest("CHANNEL-NUMBER and XOR-PEER-ADDRESS required")
        if not CHANNEL_MIN <= number <= self.config.channel_max:
            raise BadRequest("channel number out of range")
        peer = message.peer_addresses[0]
        self._check_peer_family(peer)
        if not self.policy.permits(peer):
            raise Forbidden("peer address refused")
        if not alloc.can_bind(number, peer, now):
            raise BadRequest("channel or peer bound otherwise")
        if (
            peer[0] not in alloc.permissions
            and len(alloc.permissions) >= self.config.max_permissions
        ):
            raise InsufficientCapacity("too many permissions")
        alloc.bind(number, peer, now)
        return [ToClient(client, self._success(message, {}, ident))]

    # -- helpers -------------------------------------------------------------------
    @staticmethod
    def _spend(alloc: Allocation, size: int, now: float) -> bool:
        """Per-allocation bandwidth cap: a token bucket of `bandwidth` bytes per second."""
        return alloc.meter.spend(size, now)

    def _delete(self, alloc: Allocation) -> list[Output]:
        if self._by_client.get(alloc.client) is not alloc:
            return []
        del self._by_client[alloc.client]
        del self._by_relayed[alloc.relayed]
        self.generation += 1
        self.live_ports.discard(alloc.relayed[1])
        left = self._user_counts.get(alloc.username, 1) - 1
        if left > 0:
            self._user_counts[alloc.username] = left
        else:
            self._user_counts.pop(alloc.username, None)
        meter = alloc.meter
        self.stats.packets_relayed += meter.packets_in + meter.packets_out
        self.stats.bytes_relayed += meter.bytes_in + meter.bytes_out
        return [CloseRelay(alloc.relayed)]

    def relayed_totals(self) -> tuple[int, int]:
        """Packets and bytes relayed so far, live allocations included."""
        packets, size = self.stats.packets_relayed, self.stats.bytes_relayed
        for alloc in self._by_client.values():
            meter = alloc.meter
            packets += meter.packets_in + meter.packets_out
            size += meter.bytes_in + meter.bytes_out
        return packets, size

    def _success(self, request: Message, attrs: dict[Attr, Any], ident: Identity | None) -> bytes:
        response = Message(request.method, Class.RESPONSE, request.transaction_id, attrs)
        return self._sign(response, request, ident)

    def _error(
        self, request: Message, error: RemoteError, ident: Identity | None, now: float
    ) -> bytes:
        code = error.code
        self.stats.errors[code] = self.stats.errors.get(code, 0) + 1
        attrs: dict[Attr, Any] = {Attr.ERROR_CODE: (code, REASONS.get(code, "Error"))}
        if isinstance(error, (Unauthorized, StaleNonce)):
            attrs[Attr.REALM] = self.config.realm
            attrs[Attr.NONCE] = self.auth.nonce(now)
            ident = None
        elif isinstance(error, UnknownAttribute):
            attrs[Attr.UNKNOWN_ATTRIBUTES] = error.unknown
        response = Message(request.method, Class.ERROR, request.transaction_id, attrs)
        return self._sign(response, request, ident)

    @staticmethod
    def _sign(response: Message, request: Message, ident: Identity | None) -> bytes:
        return serialize(
            response,
            integrity_key=ident.key if ident is not None else None,
            integrity_sha256=ident.sha256 if ident is not None else False,
            fingerprint=Attr.FINGERPRINT in request.attributes,
        )
