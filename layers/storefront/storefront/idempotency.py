"""Idempotency keys: a retried request replays the first answer instead of acting twice.

The key is claimed with an INSERT in the SAME PostgreSQL transaction as the
effect it guards, and the answer is stored in that transaction too, so no
crash can leave an order without its key or a key without its order.

Concurrent requests with one key need no "in progress" state: the second
INSERT waits on the first one's uncommitted row (a unique-index conflict), then
sees the committed key and replays its answer -- or, if the first rolled back,
claims the key itself. ``lock_timeout`` bounds that wait; past it the caller
gets 409 and may retry.

Powertools' idempotency utility is not used: it is synchronous, and its
record lives in a separate store (DynamoDB, Redis) written outside our
PostgreSQL transaction, so a crash between the two could still act twice or
lose the key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from storefront.adapters.database import metadata
from storefront.errors import Conflict, InvalidInput

HEADER = "Idempotency-Key"
KEY_MAX_LENGTH = 255
TIME_TO_LIVE = timedelta(hours=24)
WAIT_FOR_CONCURRENT_REQUEST = "5s"

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(200), primary_key=True),
    Column("key", String(KEY_MAX_LENGTH), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("response_status", Integer),
    Column("response_body", JSONB),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_idempotency_keys_expires_at", "expires_at"),
)


@dataclass(frozen=True)
class IdempotencyKey:
    """A request's key, who it belongs to, and what the request said."""

    scope: str
    key: str
    fingerprint: str

    @classmethod
    def of(cls, key: str, scope: str, operation: str, request: bytes) -> IdempotencyKey:
        if not 1 <= len(key) <= KEY_MAX_LENGTH or not key.isascii() or not key.isprintable():
            raise InvalidInput(HEADER, f"must be 1 to {KEY_MAX_LENGTH} printable ASCII characters")
        fingerprint = hashlib.sha256(operation.encode() + b"\n" + request).hexdigest()
        return cls(scope=scope, key=key, fingerprint=fingerprint)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


class KeyReusedForAnotherRequest(InvalidInput):
    def __init__(self) -> None:
        super().__init__(HEADER, "was already used with a different request body")


class KeyInUse(Conflict):
    def __init__(self) -> None:
        super().__init__("a request with this Idempotency-Key is still in progress; retry")


async def claim(connection: AsyncConnection, key: IdempotencyKey) -> StoredResponse | None:
    """Claim ``key`` in the caller's transaction: None when this request is the
    first (go ahead, then :func:`remember`), else the first request's answer."""
    await connection.execute(text(f"SET LOCAL lock_timeout = '{WAIT_FOR_CONCURRENT_REQUEST}'"))
    statement = (
        insert(idempotency_keys)
        .values(
            scope=key.scope,
            key=key.key,
            fingerprint=key.fingerprint,
            expires_at=func.now() + TIME_TO_LIVE,
        )
        # An expired key that cleanup has not removed yet is free again.
        .on_conflict_do_update(
            index_elements=[idempotency_keys.c.scope, idempotency_keys.c.key],
            set_={
                "fingerprint": key.fingerprint,
                "response_status": None,
                "response_body": None,
                "created_at": func.now(),
                "expires_at": func.now() + TIME_TO_LIVE,
            },
            where=idempotency_keys.c.expires_at < func.now(),
        )
        .returning(idempotency_keys.c.key)
    )
    try:
        claimed = (await connection.execute(statement)).first()
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == "55P03":  # lock_not_available
            raise KeyInUse() from error
        raise
    if claimed is not None:
        return None
    stored = (
        await connection.execute(
            select(idempotency_keys).where(
                idempotency_keys.c.scope == key.scope, idempotency_keys.c.key == key.key
            )
        )
    ).one()
    if stored.fingerprint != key.fingerprint:
        raise KeyReusedForAnotherRequest()
    return StoredResponse(status=stored.response_status, body=stored.response_body)


async def remember(
    connection: AsyncConnection, key: IdempotencyKey, status: int, body: dict[str, Any]
) -> None:
    """Store the answer to replay, in the same transaction as the effect."""
    await connection.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.scope == key.scope, idempotency_keys.c.key == key.key)
        .values(response_status=status, response_body=body)
    )


class Idempotency(Protocol):
    """Idempotency keys in the unit of work's transaction (:func:`claim`, :func:`remember`)."""

    async def claim(self, key: IdempotencyKey) -> StoredResponse | None: ...

    async def remember(self, key: IdempotencyKey, status: int, body: dict[str, Any]) -> None: ...


class SqlIdempotency:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def claim(self, key: IdempotencyKey) -> StoredResponse | None:
        return await claim(self.connection, key)

    async def remember(self, key: IdempotencyKey, status: int, body: dict[str, Any]) -> None:
        await remember(self.connection, key, status, body)
