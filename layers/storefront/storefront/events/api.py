"""Admin routes for the event pipeline: status and dead letters.

Included in the orders API. Every route depends on the admin seam
(:mod:`storefront.web.admin`), declared once on the router.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel

from storefront.adapters.redis import RedisClient
from storefront.events import dead_letters
from storefront.events.dead_letters import DeadLetter, Replayed
from storefront.events.status import EventStatus, event_status
from storefront.resources import Resources
from storefront.web.admin import require_admin
from storefront.web.dependencies import Engine, SettingsDep, get_resources
from storefront.web.problems import documented

__all__ = ["router"]

_NOT_FOUND = documented(_404="No such dead letter")

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


async def get_redis(resources: Annotated[Resources, Depends(get_resources)]) -> RedisClient:
    return resources.redis


RedisDep = Annotated[RedisClient, Depends(get_redis)]


class DeadLetterPage(BaseModel):
    items: list[DeadLetter]
    # All dead letters, of which ``items`` are the oldest ``limit``.
    total: int


class Purged(BaseModel):
    purged: int


@router.get("/events", response_model=EventStatus)
async def get_event_status(engine: Engine, redis: RedisDep, settings: SettingsDep) -> EventStatus:
    return await event_status(engine, redis, settings)


@router.get("/dead-letters", response_model=DeadLetterPage)
async def list_dead_letters(
    redis: RedisDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeadLetterPage:
    items = await dead_letters.list_dead_letters(redis, settings, limit)
    total = await dead_letters.count_dead_letters(redis, settings)
    return DeadLetterPage(items=items, total=total)


@router.post("/dead-letters/{dead_letter_id}/replay", response_model=Replayed, responses=_NOT_FOUND)
async def replay_dead_letter(
    dead_letter_id: str, redis: RedisDep, settings: SettingsDep
) -> Replayed:
    return await dead_letters.replay(redis, settings, dead_letter_id)


@router.delete(
    "/dead-letters/{dead_letter_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_NOT_FOUND,
)
async def delete_dead_letter(
    dead_letter_id: str, redis: RedisDep, settings: SettingsDep
) -> Response:
    await dead_letters.purge(redis, settings, dead_letter_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/dead-letters", response_model=Purged)
async def purge_dead_letters(redis: RedisDep, settings: SettingsDep) -> Purged:
    return Purged(purged=await dead_letters.purge(redis, settings))
