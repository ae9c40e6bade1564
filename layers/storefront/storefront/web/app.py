"""Builds an API function's FastAPI app with the shared plumbing."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import APIRouter, FastAPI

from storefront.resources import Resources
from storefront.runtime import container_resources
from storefront.web import health
from storefront.web.middleware import RequestContextMiddleware
from storefront.web.problems import documented, install_problem_handlers

ResourcesProvider = Callable[[], Resources]


def create_api(
    title: str,
    routers: Sequence[APIRouter],
    resources: ResourcesProvider = container_resources,
    *,
    with_health: bool = False,
) -> FastAPI:
    """An app serving ``routers``; ``resources`` lets tests pass their own.

    ``with_health`` adds /health and /health/ready: one function owns those paths
    in the HTTP API (API Gateway routes a path to exactly one function).
    """
    app = FastAPI(
        title=title,
        version="0.1.0",
        responses=documented(
            _422="Invalid input (RFC 9457 problem details)",
            _500="Unexpected error",
            _503="A dependency is unreachable; retry after Retry-After seconds",
        ),
    )
    app.state.resources = resources
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    if with_health:
        app.include_router(health.router)
    for router in routers:
        app.include_router(router)
    return app
