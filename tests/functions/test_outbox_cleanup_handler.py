"""The cleanup function's handler, invoked as Lambda does with the scheduled event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from types import ModuleType
from typing import ClassVar

import pytest
from sqlalchemy import Interval, cast, delete, func, insert, literal, select, update

from storefront import runtime
from storefront.events.envelope import Event, Payload
from storefront.events.outbox import add_events, outbox
from storefront.events.positions import consumer_positions
from storefront.wiring import CONSUMER_GROUPS
from tests.functions.conftest import FakeLambdaContext, load_event, load_function

# A sequence above any this suite's relay reaches: rows at or below it are settled.
SETTLED = 1_000_000


class CleanupProbed(Payload):
    event_type: ClassVar[str] = "TestCleanupProbed"
    aggregate_type: ClassVar[str] = "Test"


@pytest.fixture(scope="module")
def cleanup_function(function_environment: None) -> Iterator[ModuleType]:
    yield load_function("outbox_cleanup")
    runtime.run(runtime.container_resources().close())


def outbox_row(published_days_ago: int) -> str:
    """One published outbox row, settled by every group; returns its aggregate id."""
    resources = runtime.container_resources()
    event = Event.of(CleanupProbed(), f"agg-{published_days_ago}d")
    age = cast(literal(timedelta(days=published_days_ago)), Interval)

    async def insert() -> None:
        async with resources.engine.begin() as connection:
            await add_events(connection, [event], resources.settings.event_partitions)
            await connection.execute(
                update(outbox)
                .where(outbox.c.event_id == event.event_id)
                .values(published_at=func.now() - age, sequence=SETTLED - published_days_ago)
            )

    runtime.run(insert())
    return event.aggregate_id


def probed_aggregates() -> set[str]:
    resources = runtime.container_resources()

    async def read() -> set[str]:
        async with resources.engine.connect() as connection:
            rows = await connection.execute(
                select(outbox.c.aggregate_id).where(outbox.c.event_type == CleanupProbed.event_type)
            )
            return set(rows.scalars())

    return runtime.run(read())


@pytest.fixture
def every_group_settled() -> Iterator[None]:
    """Every consumer group's position at SETTLED on every partition, for the test."""
    resources = runtime.container_resources()
    partitions = range(resources.settings.event_partitions)

    async def set_positions(sequence: int | None) -> None:
        async with resources.engine.begin() as connection:
            await connection.execute(delete(consumer_positions))
            if sequence is not None:
                await connection.execute(
                    insert(consumer_positions),
                    [
                        {"group_name": group, "partition": partition, "sequence": sequence}
                        for group in CONSUMER_GROUPS
                        for partition in partitions
                    ],
                )

    runtime.run(set_positions(SETTLED))
    yield
    runtime.run(set_positions(None))


def test_the_scheduled_event_runs_one_cleanup_pass(
    cleanup_function: ModuleType, every_group_settled: None
) -> None:
    old = outbox_row(published_days_ago=30)
    recent = outbox_row(published_days_ago=1)

    summary = cleanup_function.handler(
        load_event("outbox_cleanup", "scheduled"), FakeLambdaContext()
    )

    assert summary["outbox_deleted"] >= 1
    assert set(summary) >= {"outbox_deleted", "entries_trimmed", "dead_letters"}
    assert old not in probed_aggregates()
    assert recent in probed_aggregates()
