"""Builds an API function's FastAPI app with the shared plumbing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from storefront.errors import DomainError
from storefront.resources import Resources
from storefront.runtime import container_resources
from storefront.settings import Settings
from storefront.web import health
from storefront.web.authentication import (
    NotAnAdmin,
    Unauthenticated,
    ensure_not_revoked,
    optional_principal,
    require_admin,
    require_principal,
)
from storefront.web.contract import A_TOKEN, ADMIN_ONLY, NEEDS, UNMETERED, complete
from storefront.web.hardening import (
    BodySizeLimitMiddleware,
    CorsAllowListMiddleware,
    SecurityHeadersMiddleware,
)
from storefront.web.middleware import HeadAsGetMiddleware, RequestContextMiddleware
from storefront.web.problems import documented, install_problem_handlers
from storefront.web.rate_limits import (
    RateLimitHeadersMiddleware,
    count_failed_authentication,
    enforce_rate_limit,
)

ResourcesProvider = Callable[[], Resources]


def create_api(
    title: str,
    routers: Sequence[APIRouter],
    resources: ResourcesProvider = container_resources,
    *,
    with_health: bool = False,
    unmetered: Sequence[APIRouter] = (),
) -> FastAPI:
    """An app serving ``routers``; ``resources`` lets tests pass their own.

    ``with_health`` adds /health and /health/ready: one function owns those paths
    in the HTTP API (API Gateway routes a path to exactly one function). They
    are not rate limited: probes poll them, and they hold no data.

    ``unmetered`` routers are served without the per-caller rate limit, and
    take no bearer token: their callers prove who they are otherwise and
    retry on their own (a payment provider's signed webhook, which a limit
    would only delay).
    """
    app = FastAPI(
        title=title,
        version="0.1.0",
        # The API's one document and its page are served by the catalog
        # function (storefront.wiring), not each app's own partial one.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        responses=documented(
            _413="Request body too large",
            _422="Invalid input (RFC 9457 problem details)",
            _429="Too many requests; retry after Retry-After seconds",
            _500="Unexpected error",
            _503="A dependency is unreachable; retry after Retry-After seconds",
        ),
    )
    app.state.resources = resources
    install_problem_handlers(app)
    # A body that does not parse is found before any dependency runs: answer
    # who the caller is (401/403) before what they sent (422).
    app.add_exception_handler(
        DomainError, _counting_failed_authentications(app.exception_handlers[DomainError])
    )
    for error in (RequestValidationError, HTTPException):
        app.add_exception_handler(error, _authenticated_first(app.exception_handlers[error], app))

    def settings() -> Settings:
        return resources().settings

    # Each add_middleware wraps the ones before it, so the last is outermost:
    # security headers reach every answer, RequestContextMiddleware's 500s
    # included. The ones reading settings sit inside it, so a configuration
    # error is a logged problem+json 500 like any other.
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=lambda: settings().max_body_bytes)
    app.add_middleware(CorsAllowListMiddleware, origins=lambda: settings().cors_allow_origins)
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    if with_health:
        app.include_router(health.router)
    for router in routers:
        # Every API route is metered. The limiter resolves the caller's token
        # itself (a sub-dependency), so it counts per principal however the
        # route declares its own authentication.
        _document_refusals(router)
        app.include_router(router, dependencies=[Depends(enforce_rate_limit)], responses=_BAD_TOKEN)
    for router in unmetered:
        _mark_unmetered(router)
        app.include_router(router)

    generate = app.openapi
    completed: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not completed:
            completed.update(complete(generate()))
        return completed

    app.openapi = openapi  # type: ignore[method-assign]
    return app


# The limiter verifies any token it is sent, so every metered route may
# answer 401, even one that needs no token.
_BAD_TOKEN = documented(_401="A bearer token that is malformed, expired or invalid")


def _document_refusals(router: APIRouter) -> None:
    """Declare the 401 and 403 of each of the router's routes, from what it depends on.

    Derived rather than written on each route, so none can forget them. Each
    route gains what its own dependencies imply, the same for every app that
    includes it, so updating the router's routes in place is idempotent.
    """
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        calls = _dependency_calls(route.dependant)
        refusals = {}
        if require_principal in calls:
            refusals["_401"] = "No bearer token, or one that is malformed, expired or invalid"
            route.openapi_extra = (route.openapi_extra or {}) | {NEEDS: A_TOKEN}
        if require_admin in calls:
            refusals["_403"] = "The token's subject is not an administrator"
            route.openapi_extra = (route.openapi_extra or {}) | {NEEDS: ADMIN_ONLY}
        for status, response in documented(**refusals).items():
            route.responses.setdefault(status, response)


def _mark_unmetered(router: APIRouter) -> None:
    """Tell the document (storefront.web.contract) that the router's routes
    are neither metered nor take a token. Idempotent, like :func:`_document_refusals`."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            route.openapi_extra = (route.openapi_extra or {}) | {UNMETERED: True}


def _dependency_calls(dependant: Dependant) -> set[object]:
    calls: set[object] = set()
    for dependency in dependant.dependencies:
        calls.add(dependency.call)
        calls |= _dependency_calls(dependency)
    return calls


def _counting_failed_authentications(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Every 401 counts against its client IP; past the budget, 429 instead."""

    async def handle(request: Request, exc: Exception) -> Response:
        if isinstance(exc, Unauthenticated):
            limited = await count_failed_authentication(request)
            if limited is not None:
                exc = limited
        response: Response = await handler(request, exc)
        return response

    return handle


def _authenticated_first(handler: Callable[..., Any], app: FastAPI) -> Callable[..., Any]:
    async def handle(request: Request, exc: Exception) -> Response:
        refused = await _refusal(request)
        if refused is not None:
            exc, handler_now = refused, app.exception_handlers[DomainError]
        else:
            handler_now = handler
        response: Response = await handler_now(request, exc)  # type: ignore[misc]
        return response

    return handle


async def _refusal(request: Request) -> DomainError | None:
    """Why the matched route's caller may not call it (401/403), or None."""
    route = request.scope.get("route")
    needs = (getattr(route, "openapi_extra", None) or {}).get(NEEDS)
    if needs is None:
        return None
    try:
        principal = await optional_principal(request)
        if principal is not None:
            # A body that is not JSON is refused before the limiter ran, so
            # nothing read the token's revocation yet.
            await ensure_not_revoked(request, principal)
    except DomainError as refused:
        return refused
    if principal is None:
        return Unauthenticated("This route needs a bearer token.")
    if needs == ADMIN_ONLY and not principal.is_admin:
        return NotAnAdmin()
    return None
