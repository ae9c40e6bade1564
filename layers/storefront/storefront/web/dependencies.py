"""FastAPI dependencies that hand the use cases their collaborators.

All ``async def``: FastAPI runs a plain ``def`` dependency in a thread pool,
a thread hop per request for nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.cache import Cache
from storefront.resources import Resources
from storefront.settings import Settings


def resources_of(request: Request) -> Resources:
    """The container's resources, for a route that takes them without
    ``Depends``: each dependency FastAPI resolves costs a request tens of µs,
    which a cache hit (about a millisecond in all) notices."""
    resources: Resources = request.app.state.resources()
    return resources


async def get_resources(request: Request) -> Resources:
    return resources_of(request)


async def get_engine(resources: Annotated[Resources, Depends(get_resources)]) -> AsyncEngine:
    return resources.engine


async def get_read_engine(
    resources: Annotated[Resources, Depends(get_resources)],
) -> AsyncEngine:
    return resources.read_engine


async def get_cache(resources: Annotated[Resources, Depends(get_resources)]) -> Cache:
    return resources.cache


async def get_settings(resources: Annotated[Resources, Depends(get_resources)]) -> Settings:
    return resources.settings


async def get_correlation_id(request: Request) -> str | None:
    correlation_id: str | None = getattr(request.state, "correlation_id", None)
    return correlation_id


# Engine: the writer, for writes and for reads of what the caller may have
# just written. ReadEngine: the read endpoint (the writer when none is
# configured), for reads that tolerate replica lag.
Engine = Annotated[AsyncEngine, Depends(get_engine)]
ReadEngine = Annotated[AsyncEngine, Depends(get_read_engine)]
CacheDep = Annotated[Cache, Depends(get_cache)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CorrelationId = Annotated[str | None, Depends(get_correlation_id)]
