"""Opaque keyset cursors.

A cursor names the last id a page returned. The next page asks for ids after
it, which an index answers in the same time whether the page is the first or
the thousandth (no OFFSET), and ids never shift when rows are inserted, so a
walk returns every row once.
"""

from __future__ import annotations

import base64
import binascii
from uuid import UUID

from storefront.errors import InvalidInput

_VERSION = b"k1:"


def encode_cursor(last_id: UUID) -> str:
    return base64.urlsafe_b64encode(_VERSION + last_id.bytes).decode().rstrip("=")


def decode_cursor(cursor: str) -> UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if not raw.startswith(_VERSION) or len(raw) != len(_VERSION) + 16:
        raise InvalidInput("cursor", "is not a cursor this API issued")
    return UUID(bytes=raw[len(_VERSION) :])
