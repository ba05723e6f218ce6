"""ICE-lite (RFC 8445 §2.5): answer a browser's connectivity checks, nothing more.

Sans-I/O, on aioice's STUN codec. The SFU never sends checks: a browser (the full,
controlling agent) checks the one host candidate of the answer; a Binding request whose
USERNAME starts with a session's ufrag and whose MESSAGE-INTEGRITY holds under its pwd
(RFC 8445 §7.3) is answered, and its source address becomes that session's path. The
periodic checks are also consent (RFC 7675).
"""

from __future__ import annotations

from dataclasses import dataclass

from aioice import stun


@dataclass(frozen=True, slots=True)
class BindingRequest:
    """A parsed Binding request: whose it claims to be and what it asks."""

    message: stun.Message
    local_ufrag: str
    use_candidate: bool


def parse_binding(data: bytes) -> BindingRequest | None:
    """A Binding request with a `local:remote` USERNAME, or None (anything else is dropped)."""
    try:
        message = stun.parse_message(data)
    except (ValueError, KeyError, IndexError, UnicodeDecodeError):
        return None
    except Exception:  # aioice's unpackers raise struct.error on short attributes
        return None
    if (message.message_method != stun.Method.BINDING
            or message.message_class != stun.Class.REQUEST):
        return None
    username = message.attributes.get("USERNAME")
    if not isinstance(username, str) or ":" not in username:
        return None
    return BindingRequest(message, username.split(":", 1)[0],
                          "USE-CANDIDATE" in message.attributes)


def answer_binding(request: BindingRequest, address: tuple[str, int], *,
                   local_pwd: str) -> bytes | None:
    """The success response (XOR-MAPPED-ADDRESS, integrity, fingerprint), or None when the
    request's MESSAGE-INTEGRITY does not hold under `local_pwd` (RFC 8489 §9.1.3)."""
    key = local_pwd.encode()
    if not request.message.check_message_integrity(key):
        return None
    response = stun.Message(message_method=stun.Method.BINDING,
                            message_class=stun.Class.RESPONSE,
                            transaction_id=request.message.transaction_id)
    response.attributes["XOR-MAPPED-ADDRESS"] = address[:2]
    response.add_message_integrity(key)
    return bytes(response)
