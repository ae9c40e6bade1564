"""Admin routes for the event pipeline: status and dead letters.

Included in the orders API. Every route depends on the admin seam
(:mod:`storefront.web.admin`), declared once on the router.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
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
# A bigint: anything else is a 422 naming the path parameter, never a 500.
DeadLetterId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class DeadLetterPage(BaseModel):
    items: list[DeadLetter]
    # All dead letters, of which ``items`` are the oldest ``limit``.
    total: int


class Purged(BaseModel):
    purged: int


def consumer_groups(request: Request) -> tuple[str, ...]:
    """The deployment's consumer groups, as the composition root gave them to the app."""
    groups: tuple[str, ...] = request.app.state.consumer_groups
    return groups


@router.get("/events", response_model=EventStatus)
async def get_event_status(
    engine: Engine,
    redis: RedisDep,
    settings: SettingsDep,
    groups: Annotated[tuple[str, ...], Depends(consumer_groups)],
) -> EventStatus:
    return await event_status(engine, redis, settings, groups)


@router.get("/dead-letters", response_model=DeadLetterPage)
async def list_dead_letters(
    engine: Engine,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeadLetterPage:
    items = await dead_letters.list_dead_letters(engine, limit)
    total = await dead_letters.count_dead_letters(engine)
    return DeadLetterPage(items=items, total=total)


@router.post(
    "/dead-letters/{dead_letter_id}/replay",
    response_model=Replayed,
    responses=_NOT_FOUND | documented(_409="The dead letter holds no event that parses"),
)
async def replay_dead_letter(
    dead_letter_id: DeadLetterId, engine: Engine, settings: SettingsDep
) -> Replayed:
    return await dead_letters.replay(engine, settings.event_partitions, dead_letter_id)


@router.delete(
    "/dead-letters/{dead_letter_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_NOT_FOUND,
)
async def delete_dead_letter(dead_letter_id: DeadLetterId, engine: Engine) -> Response:
    await dead_letters.purge(engine, dead_letter_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/dead-letters", response_model=Purged)
async def purge_dead_letters(engine: Engine) -> Purged:
    return Purged(purged=await dead_letters.purge(engine))
