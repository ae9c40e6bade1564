"""HTTP caching for cached reads: ETag, If-None-Match -> 304, X-Cache, Cache-Control."""

from __future__ import annotations

import hashlib

from fastapi import Request, Response

from storefront.adapters.cache import CacheOutcome
from storefront.observability import metrics

_OUTCOME_METRIC = {
    CacheOutcome.HIT: "CacheHit",
    CacheOutcome.MISS: "CacheMiss",
    CacheOutcome.BYPASS: "CacheBypass",
}


def cached_json(request: Request, body: bytes, outcome: CacheOutcome, max_age: int) -> Response:
    metrics.add_metric(name=_OUTCOME_METRIC[outcome], unit="Count", value=1)
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    headers = {
        "ETag": etag,
        "X-Cache": outcome.value,
        # Clients may keep the body but must revalidate it (cheap: a 304) once
        # max-age passes; the server side is invalidated on every write.
        "Cache-Control": f"public, max-age={max_age}, must-revalidate",
    }
    if etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _etags(header: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}
