"""Product-view routes, served by the catalog function (they live under /products).

The catalog app includes this router BEFORE its own: FastAPI matches routes in
order, and ``/products/{product_id}`` would otherwise take ``/products/popular``
(API Gateway prefers the literal path on its own).

Both routes read PostgreSQL only where Redis cannot answer (a product's
existence on a catalog cache miss, the flushed counts when Redis has none), and
neither reads back what its caller wrote, so they take the read endpoint.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status

from storefront.analytics import service
from storefront.analytics.counters import ViewCounter
from storefront.analytics.domain import Popular, Window
from storefront.auth.principal import Principal
from storefront.web.authentication import optional_principal
from storefront.web.dependencies import CacheDep, ReadEngine, SettingsDep, get_resources
from storefront.web.problems import documented
from storefront.web.rate_limits import caller_of

router = APIRouter(tags=["product views"])


async def get_view_counter(request: Request) -> ViewCounter:
    """One counter per container, like the rate limiter; rebuilt if the
    resources were closed and reopened."""
    resources = await get_resources(request)
    counter: ViewCounter | None = getattr(request.app.state, "view_counter", None)
    if counter is None or counter.redis is not resources.redis:
        counter = request.app.state.view_counter = ViewCounter(resources.redis, resources.settings)
    return counter


Counter = Annotated[ViewCounter, Depends(get_view_counter)]


@router.get("/products/popular", response_model=Popular)
async def popular_products(
    engine: ReadEngine,
    counter: Counter,
    settings: SettingsDep,
    window: Window = Window.HOURS_24,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> Popular:
    wanted = min(limit or 10, settings.popular_limit_max)
    return await service.popular(window, wanted, engine, counter)


@router.post(
    "/products/{product_id}/views",
    status_code=status.HTTP_202_ACCEPTED,
    # No body: declared as such, not as the JSON a route answers by default.
    response_class=Response,
    responses=documented(_404="No such product"),
)
async def record_view(
    request: Request,
    product_id: UUID,
    engine: ReadEngine,
    cache: CacheDep,
    counter: Counter,
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Response:
    # 202 whether the view was counted, already counted for this caller in the
    # window, or dropped while Redis was down: a page view's beacon has nothing
    # to retry, and the drop is counted in the metrics.
    viewer = caller_of(request, principal)
    await service.record_view(product_id, viewer, engine, cache, counter)
    return Response(status_code=status.HTTP_202_ACCEPTED)


__all__ = ["router"]
