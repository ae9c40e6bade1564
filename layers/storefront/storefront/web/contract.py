"""The HTTP API's one OpenAPI document: what every operation needs, answers and sends.

Each API function's app describes its own routes; :func:`complete` adds what
they share so a generated client needs no hand edits: one ``Problem``
component for every error answer, the bearer scheme and each operation's
security (an admin-only operation says so), and every response header the
middleware and routes send. :func:`merge` joins the functions' documents into
the single document the API serves at ``/openapi.json``
(:func:`storefront.wiring.api_document`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from storefront.web.problems import PROBLEM_SCHEMA

__all__ = [
    "ADMIN_ONLY",
    "A_TOKEN",
    "CONDITIONAL_READ",
    "LOCATION",
    "NEEDS",
    "REPLAYED",
    "UNMETERED",
    "complete",
    "header",
    "merge",
]

TITLE = "Storefront API"
VERSION = "0.1.0"
BEARER = "bearer"

# How a route marks what it needs (``openapi_extra``), read by :func:`complete`.
NEEDS = "x-storefront-needs"
ADMIN_ONLY = "admin"
A_TOKEN = "token"  # noqa: S105  (a marker, not a secret)
# A route served without the rate limit (create_api's ``unmetered``): no
# RateLimit-* headers, no 429, and no use for a token.
UNMETERED = "x-storefront-unmetered"


def header(description: str, schema_type: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": schema_type}}


LOCATION = {"Location": header("Where the created resource (or the download) is")}
REPLAYED = {
    "Idempotent-Replayed": header(
        "true when this is the stored answer to an earlier request with the same Idempotency-Key"
    )
}
_CORRELATION = {"X-Correlation-Id": header("The request's id, in every log line it caused")}
_RATE_LIMIT = {
    "RateLimit-Limit": header("Requests allowed in the window", "integer"),
    "RateLimit-Remaining": header("Requests left in the window", "integer"),
    "RateLimit-Reset": header("Seconds until the window ends", "integer"),
}
_RETRY_AFTER = {"Retry-After": header("Seconds to wait before trying again", "integer")}
_CACHE = {
    "ETag": header("The body's entity tag, for If-None-Match"),
    "Cache-Control": header("How long the body may be used before revalidating"),
    "X-Cache": header("HIT, MISS or BYPASS: whether the server's cache answered"),
}

# A cached read: If-None-Match in, 304 out (openapi_extra of the route).
CONDITIONAL_READ: dict[str, Any] = {
    "parameters": [
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "ETags the client holds; a match answers 304 with no body",
        }
    ],
    "responses": {
        "304": {"description": "Not modified: the client's copy is current", "headers": _CACHE},
    },
    "x-storefront-cached": True,
}


def complete(document: dict[str, Any], *, metered: bool = True) -> dict[str, Any]:
    """``document`` (one app's OpenAPI) with the shared components, security and headers."""
    document = copy.deepcopy(document)
    document["openapi"] = "3.1.0"
    components = document.setdefault("components", {})
    components.setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token of the configured issuer (Cognito, or any "
            "OIDC issuer's JWKS; HS256 locally). Admin operations need the admin role: "
            "the configured claim (cognito:groups) holding the admin value.",
        }
    }
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            _complete_operation(operation, metered=metered and not path.startswith("/health"))
    return document


def _complete_operation(operation: dict[str, Any], *, metered: bool) -> None:
    unmetered = operation.pop(UNMETERED, False)
    _secure(operation, operation.pop(NEEDS, None), takes_token=not unmetered)
    if unmetered:
        metered = False
        operation.get("responses", {}).pop("429", None)
    for parameter in operation.get("parameters", []):
        _no_null_header(parameter)
    cached = operation.pop("x-storefront-cached", False)
    for status, response in operation.get("responses", {}).items():
        headers = response.setdefault("headers", {})
        headers.update(_CORRELATION)
        if metered:
            headers.update(_RATE_LIMIT)
        if status in ("429", "503"):
            headers.update(_RETRY_AFTER)
        if status == "303":
            headers.update(LOCATION)
        if cached and status == "200":
            headers.update(_CACHE)
        for content in response.get("content", {}).values():
            if content.get("schema") == PROBLEM_SCHEMA:
                content["schema"] = {"$ref": "#/components/schemas/Problem"}


def _secure(operation: dict[str, Any], needs: str | None, *, takes_token: bool = True) -> None:
    if needs in (ADMIN_ONLY, A_TOKEN):
        operation["security"] = [{BEARER: []}]
    elif not takes_token:
        operation["security"] = []
    else:
        # A token is optional: the caller's own rate limit, not access.
        operation["security"] = [{}, {BEARER: []}]
    if needs == ADMIN_ONLY:
        operation["description"] = (
            operation.get("description", "") + "\n\nRequires the admin role."
        ).strip()


def _no_null_header(parameter: dict[str, Any]) -> None:
    """HTTP has no null header: an optional header is one left out, so a
    generated client must not offer to send None (FastAPI's ``str | None``
    says anyOf [string, null])."""
    variants = parameter.get("schema", {}).get("anyOf", [])
    if parameter.get("in") != "header" or {"type": "null"} not in variants:
        return
    kept = [variant for variant in variants if variant != {"type": "null"}]
    schema = {key: value for key, value in parameter["schema"].items() if key != "anyOf"}
    parameter["schema"] = schema | (kept[0] if len(kept) == 1 else {"anyOf": kept})


def merge(documents: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One document from the functions' own: their paths and components joined.

    A path served by two functions, or one component name with two different
    schemas, is an error: API Gateway routes a path to one function, and a
    generated client gets one class per name.
    """
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {}},
    }
    for document in documents:
        for path, operations in document.get("paths", {}).items():
            mine = merged["paths"].setdefault(path, {})
            for method, operation in operations.items():
                if method in mine:
                    raise ValueError(f"{method.upper()} {path} is served by two functions")
                mine[method] = operation
        for kind, entries in document.get("components", {}).items():
            known = merged["components"].setdefault(kind, {})
            for name, schema in entries.items():
                if known.setdefault(name, schema) != schema:
                    raise ValueError(f"components.{kind}.{name} differs between functions")
    return merged
