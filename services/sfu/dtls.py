"""DTLS-SRTP for one PeerConnection (RFC 5763, RFC 5764), as records in and records out.

Sans-I/O: OpenSSL through memory BIOs, with the certificate, SSL context and SRTP profiles
of aiortc's `RTCDtlsTransport`, and its keying-material export; no socket and no task.
The SFU is the DTLS server (`a=setup:passive`); the browser's certificate must match the
fingerprint of its offer (RFC 8122 §5).
"""

from __future__ import annotations

import enum
from typing import Final, Literal

import pylibsrtp
from aiortc.rtcdtlstransport import (
    SRTP_PROFILES,
    RTCCertificate,
    SRTPProtectionProfile,
    certificate_digest,
)
from OpenSSL import SSL
import contextlib

RECORD_BYTES: Final[int] = 1500
MAX_RECORDS_PER_CALL: Final[int] = 32


class DtlsState(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"
    CLOSED = "closed"


class DtlsEndpoint:
    """One side of a DTLS association; `receive` and `on_timeout` return records to send."""

    def __init__(self, certificate: RTCCertificate, *, remote_fingerprint: tuple[str, str],
                 role: Literal["server", "client"] = "server") -> None:
        self.role = role
        self.remote_fingerprint = remote_fingerprint
        self.state = DtlsState.CONNECTING
        self.rx: pylibsrtp.Session | None = None
        self.tx: pylibsrtp.Session | None = None
        self._ssl = SSL.Connection(certificate._create_ssl_context(srtp_profiles=SRTP_PROFILES))
        if role == "server":
            self._ssl.set_accept_state()
        else:
            self._ssl.set_connect_state()

    def start(self) -> list[bytes]:
        """The first flight (a client's ClientHello; nothing for a server)."""
        if self.role == "client":
            self._handshake()
        return self._drain()

    def receive(self, record: bytes) -> list[bytes]:
        """Feed one datagram of DTLS records; returns the records to send back."""
        if self.state in (DtlsState.FAILED, DtlsState.CLOSED):
            return []
        try:
            self._ssl.bio_write(record)
        except SSL.Error:
            return []
        if self.state is DtlsState.CONNECTING:
            self._handshake()
        else:
            try:
                self._ssl.recv(RECORD_BYTES)  # no data channel: only alerts matter
            except SSL.ZeroReturnError:
                self.state = DtlsState.CLOSED
            except SSL.Error:
                pass
        return self._drain()

    def on_timeout(self) -> list[bytes]:
        """Retransmit a lost flight if OpenSSL's timer says so (RFC 6347 §4.2.4)."""
        if self.state is not DtlsState.CONNECTING:
            return []
        timeout = self._ssl.DTLSv1_get_timeout()
        if timeout is not None and timeout <= 0:
            self._ssl.DTLSv1_handle_timeout()
        return self._drain()

    def close(self) -> list[bytes]:
        """A close_notify alert to send, if connected."""
        if self.state is DtlsState.CONNECTED:
            with contextlib.suppress(SSL.Error):
                self._ssl.shutdown()
        self.state = DtlsState.CLOSED
        return self._drain()

    def _handshake(self) -> None:
        try:
            self._ssl.do_handshake()
        except SSL.WantReadError:
            return
        except SSL.Error:
            self.state = DtlsState.FAILED
            return
        if not self._peer_matches() or not self._setup_srtp():
            self.state = DtlsState.FAILED
            return
        self.state = DtlsState.CONNECTED

    def _peer_matches(self) -> bool:
        cert = self._ssl.get_peer_certificate(as_cryptography=True)
        algorithm, value = self.remote_fingerprint
        return cert is not None and certificate_digest(cert, algorithm) == value.upper()

    def _setup_srtp(self) -> bool:
        """RFC 5764 §4.2: keys from the exporter, client's first, then the server's."""
        selected = self._ssl.get_selected_srtp_profile()
        profile: SRTPProtectionProfile | None = next(
            (p for p in SRTP_PROFILES if p.openssl_profile == selected), None)
        if profile is None:
            return False
        material = self._ssl.export_keying_material(
            b"EXTRACTOR-dtls_srtp", 2 * (profile.key_length + profile.salt_length))
        tx_idx, rx_idx = (1, 0) if self.role == "server" else (0, 1)
        self.rx = _session(profile, profile.get_key_and_salt(material, rx_idx), inbound=True)
        self.tx = _session(profile, profile.get_key_and_salt(material, tx_idx), inbound=False)
        return True

    def _drain(self) -> list[bytes]:
        out: list[bytes] = []
        for _ in range(MAX_RECORDS_PER_CALL):
            try:
                data = self._ssl.bio_read(RECORD_BYTES)
            except SSL.Error:
                break
            if not data:
                break
            out.append(data)
        return out


def _session(profile: SRTPProtectionProfile, key: bytes, *, inbound: bool) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=key,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND if inbound
        else pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
        srtp_profile=profile.libsrtp_profile)
    policy.allow_repeat_tx = True  # NACK answers resend the same packet index
    policy.window_size = 1024
    return pylibsrtp.Session(policy)


def fingerprint_of(certificate: RTCCertificate) -> str:
    """The certificate's `sha-256 AA:BB:...` for `a=fingerprint`."""
    fp = next(f for f in certificate.getFingerprints() if f.algorithm == "sha-256")
    return f"{fp.algorithm} {fp.value}"
