"""Identifiers: time-ordered UUIDs (v7), so keyset pagination by id follows creation order
and new rows land at the right edge of the primary-key index."""

from uuid import UUID

from uuid6 import uuid7


def new_id() -> UUID:
    return UUID(bytes=uuid7().bytes)
