"""A test consumer group: answers each Ping with a Pong, an effect counted in the outbox.

Shared by the consumer, dead-letter and worker tests, so the payloads register once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import func, select

from storefront.adapters.database import UnitOfWork
from storefront.adapters.redis import RedisClient
from storefront.events.consumer import ConsumerStats, run_consumer
from storefront.events.envelope import Event, Payload
from storefront.events.handlers import HandlerRegistry
from storefront.events.partitions import stream_key
from storefront.events.positions import consumer_positions
from storefront.resources import Resources
from storefront.settings import Settings
from tests.integration.streams import emitted

GROUP = "consumer-test"


class Ping(Payload):
    event_type: ClassVar[str] = "ConsumerTestPing"
    aggregate_type: ClassVar[str] = "consumer-test"
    seq: int
    fail: bool = False


class Pong(Payload):
    event_type: ClassVar[str] = "ConsumerTestPong"
    aggregate_type: ClassVar[str] = "consumer-test"
    seq: int


class NotOurs(Payload):
    """Known to the process, handled by no handler of GROUP: another group's event."""

    event_type: ClassVar[str] = "ConsumerTestNotOurs"
    aggregate_type: ClassVar[str] = "consumer-test"


@dataclass
class Pinger:
    """The test group's registry, and what its handler was asked to do."""

    group: str = GROUP
    failing: bool = True
    # Seconds each handling takes, so that concurrent consumers overlap.
    pause: float = 0
    # Pings go to a run handler: consecutive ones in one call.
    in_runs: bool = False
    # What a failing ping raises.
    error: Callable[[str], Exception] = RuntimeError
    attempts: list[tuple[str, int]] = field(default_factory=list)
    # The size of each call of the run handler.
    runs: list[int] = field(default_factory=list)
    registry: HandlerRegistry = field(init=False)

    def __post_init__(self) -> None:
        self.registry = HandlerRegistry(self.group)

        async def answer(payload: Ping, event: Event, uow: UnitOfWork) -> Sequence[Event]:
            self.attempts.append((event.aggregate_id, payload.seq))
            await asyncio.sleep(self.pause)
            if payload.fail and self.failing:
                raise self.error(f"cannot answer ping {payload.seq}")
            return [Event.of(Pong(seq=payload.seq), event.aggregate_id, caused_by=event)]

        async def answer_run(
            pings: Sequence[tuple[Ping, Event]], uow: UnitOfWork
        ) -> Sequence[Event]:
            self.runs.append(len(pings))
            return [pong for payload, event in pings for pong in await answer(payload, event, uow)]

        if self.in_runs:
            self.registry.on_run(Ping)(answer_run)
        else:
            self.registry.on(Ping)(answer)

    def attempted(self, count: int) -> Callable[[], bool]:
        return lambda: len(self.attempts) >= count


def ping(aggregate: str, seq: int, *, fail: bool = False) -> Event:
    return Event.of(Ping(seq=seq, fail=fail), aggregate)


async def consume(
    resources: Resources,
    settings: Settings,
    pinger: Pinger,
    remaining_ms: Callable[[], int],
    **options: Any,
) -> ConsumerStats:
    return await run_consumer(
        pinger.registry, resources.engine, resources.redis, settings, remaining_ms, **options
    )


async def pongs(resources: Resources) -> list[tuple[str, int]]:
    return [
        (event.aggregate_id, int(event.payload["seq"]))
        for event in await emitted(resources.engine, Pong.event_type)
    ]


async def pending(redis: RedisClient, settings: Settings, group: str = GROUP) -> int:
    total = 0
    for partition in range(settings.event_partitions):
        summary = await redis.xpending(stream_key(settings.redis_key_prefix, partition), group)
        total += int(summary["pending"])
    return total


async def settled(resources: Resources, group: str = GROUP) -> int:
    """How many events the group has settled, over all partitions (its positions)."""
    async with resources.engine.connect() as connection:
        query = select(func.coalesce(func.sum(consumer_positions.c.sequence), 0)).where(
            consumer_positions.c.group_name == group
        )
        return int((await connection.execute(query)).scalar_one())
