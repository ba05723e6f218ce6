"""Exceptions raised by the STUN codec.

```
StunError                  base of everything the codec raises
└── DecodeError            the bytes are not a well-formed STUN message (remote error)
    └── AttributeDecodeError   one attribute's value is malformed (maps to 400)
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .message import Message


class StunError(Exception):
    """Base class of the STUN codec's exceptions."""


class DecodeError(StunError):
    """The bytes are not a well-formed STUN message: the peer broke RFC 8489 §5-§6."""


class AttributeDecodeError(DecodeError):
    """An attribute value is malformed; a server answers 400 (RFC 8489 §14)."""

    def __init__(self, attr_type: int, reason: str, message: Message) -> None:
        super().__init__(f"attribute 0x{attr_type:04x}: {reason}")
        self.attr_type = attr_type
        self.message = message
