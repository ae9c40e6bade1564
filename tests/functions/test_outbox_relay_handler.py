"""The relay function's handler, invoked as Lambda does with the scheduled event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import ClassVar, cast

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.pool import QueuePool

from storefront import runtime
from storefront.events.envelope import Event, Payload
from storefront.events.outbox import add_events, outbox
from storefront.events.partitions import stream_key
from tests.functions.conftest import FakeLambdaContext, load_event, load_function
from tests.integration.streams import StreamEntries


class RelayProbed(Payload):
    event_type: ClassVar[str] = "TestRelayProbed"
    aggregate_type: ClassVar[str] = "Test"

    seq: int


@dataclass
class ShortBudgetContext(FakeLambdaContext):
    """A context whose remaining time really runs down, just past the relay's margin."""

    budget_ms: int = 2_500
    deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.budget_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@pytest.fixture(scope="module")
def relay_function(function_environment: None) -> Iterator[ModuleType]:
    yield load_function("outbox_relay")
    runtime.run(runtime.container_resources().close())


@pytest.fixture
def empty_outbox(relay_function: ModuleType) -> None:
    resources = runtime.container_resources()

    async def empty() -> None:
        async with resources.engine.begin() as connection:
            await connection.execute(text("TRUNCATE outbox, event_partitions, consumer_positions"))
        prefix = resources.settings.redis_key_prefix
        keys = [stream_key(prefix, p) for p in range(resources.settings.event_partitions)]
        await resources.redis.delete(*keys)

    runtime.run(empty())


def write(events: Sequence[Event]) -> None:
    resources = runtime.container_resources()

    async def insert() -> None:
        async with resources.engine.begin() as connection:
            await add_events(connection, events, resources.settings.event_partitions)

    runtime.run(insert())


def streamed_event_ids() -> set[str]:
    resources = runtime.container_resources()
    prefix = resources.settings.redis_key_prefix

    async def read() -> set[str]:
        ids: set[str] = set()
        for partition in range(resources.settings.event_partitions):
            entries = await resources.redis.xrange(stream_key(prefix, partition))
            for _, fields in cast(StreamEntries, entries):
                ids.add(str(Event.model_validate_json(fields[b"envelope"]).event_id))
        return ids

    return runtime.run(read())


def unpublished() -> int:
    async def count() -> int:
        async with runtime.container_resources().engine.connect() as connection:
            found = await connection.scalar(
                select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            )
        return int(found or 0)

    return runtime.run(count())


@pytest.mark.usefixtures("empty_outbox")
def test_two_scheduled_invocations_relay_on_one_loop(relay_function: ModuleType) -> None:
    event = load_event("outbox_relay", "scheduled")
    first_batch = [Event.of(RelayProbed(seq=n), f"order-{n}") for n in range(3)]
    second_batch = [Event.of(RelayProbed(seq=n), f"order-{n}") for n in range(3, 5)]

    write(first_batch)
    first = relay_function.handler(event, ShortBudgetContext())
    loop = runtime.container_loop()
    resources = runtime.container_resources()
    engine, redis = resources.engine, resources.redis
    write(second_batch)
    second = relay_function.handler(event, ShortBudgetContext())

    assert (first["relayed"], second["relayed"]) == (3, 2)
    assert first["passes"] >= 1
    assert streamed_event_ids() == {str(e.event_id) for e in first_batch + second_batch}
    assert unpublished() == 0
    # warm invocations: the same loop, engine and Redis client, nothing closed
    assert runtime.container_loop() is loop
    assert not loop.is_closed()
    assert runtime.container_resources() is resources
    assert (resources.engine, resources.redis) == (engine, redis)
    assert cast(QueuePool, engine.pool).checkedout() == 0


@pytest.mark.usefixtures("empty_outbox")
def test_the_handler_never_calls_asyncio_run(
    relay_function: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("asyncio.run closes the container's loop")

    monkeypatch.setattr(asyncio, "run", forbidden)
    result = relay_function.handler(load_event("outbox_relay", "scheduled"), ShortBudgetContext())

    assert result["relayed"] == 0
