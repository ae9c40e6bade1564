"""RFC 9457 problem details: every error answer has the same shape.

``{"type", "title", "status", "detail"}`` plus, for validation errors, an
``errors`` list of ``{"field", "reason"}``. Nothing from a stack trace or SQL
ever reaches the body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from storefront.errors import DomainError, InvalidInput

PROBLEM_JSON = "application/problem+json"
DATABASE_RETRY_AFTER_SECONDS = 5


# The shape of every problem answer, declared in the OpenAPI schema so that
# clients (and Schemathesis, ``make chaos``) can rely on it. Inline rather
# than a component: each route's ``responses`` carries it as is.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "reason"],
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}


def documented(**descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for problem answers: ``documented(_404="No such product")``."""
    return {
        int(status.lstrip("_")): {
            "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}},
            "description": description,
        }
        for status, description in descriptions.items()
    }


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


def problem(
    status: int,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> ProblemResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return ProblemResponse(body | extensions, status_code=status, headers=dict(headers or {}))


def database_unavailable() -> ProblemResponse:
    return problem(
        503,
        "Service unavailable",
        "The database is unreachable; retry shortly.",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def internal_error() -> ProblemResponse:
    return problem(500, "Internal server error", "An unexpected error occurred.")


def field_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Pydantic's errors as ``{"field", "reason"}``, the field as a dotted path."""
    found = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part != "body"]
        if location and location[0] in {"query", "path", "header"}:
            location = location[1:]
        reason = str(error.get("msg", "is invalid"))
        found.append({"field": ".".join(location) or "body", "reason": reason})
    return found


def validation_problem(errors: list[dict[str, str]]) -> ProblemResponse:
    detail = "; ".join(f"{error['field']}: {error['reason']}" for error in errors)
    return problem(422, "Unprocessable content", detail, errors=errors)


async def _on_validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_problem(field_errors(exc.errors()))


async def _on_domain_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, DomainError)
    if isinstance(exc, InvalidInput):
        return validation_problem([{"field": exc.field, "reason": exc.reason}])
    return problem(exc.status, exc.title, exc.detail, headers=exc.headers)


async def _on_http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, HTTPException)
    if isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI answers 400 for a JSON body that is not UTF-8, and 422 for
        # one that does not parse. Both are bodies that are not JSON (RFC 8259
        # requires UTF-8): one answer, the 422 every route declares.
        return validation_problem([{"field": "body", "reason": "JSON decode error: not UTF-8"}])
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
    return problem(exc.status_code, title, detail, headers=exc.headers)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(HTTPException, _on_http_error)
