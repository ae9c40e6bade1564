"""The ``Idempotency-Key`` header, shared by every route that honours it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Response
from pydantic import BaseModel

from storefront.idempotency import HEADER, KEY_MAX_LENGTH, IdempotencyKey

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        description="Retry safely: the same key and body replay the first answer (24 h)",
        # What IdempotencyKey.of accepts, declared so a client knows it too.
        min_length=1,
        max_length=KEY_MAX_LENGTH,
        pattern=r"^[ -~]+$",  # printable ASCII
    ),
]


def idempotency_key_of(
    header: str | None, scope: str, operation: str, request: BaseModel
) -> IdempotencyKey | None:
    """The request's key, fingerprinted by its parsed body (so key order and
    whitespace do not matter); None when the client sent no key."""
    if header is None:
        return None
    return IdempotencyKey.of(header, scope, operation, request.model_dump_json().encode())


def answered(response: Response, location: str, replayed: bool) -> None:
    """Headers of a created resource, the same whether first answer or replay."""
    response.headers["Location"] = location
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
