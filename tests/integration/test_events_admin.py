"""Admin routes and ``storefront dlq``: event status and dead letters on real servers."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import ClassVar

import httpx
import pytest
from sqlalchemy import select

from storefront import wiring
from storefront.adapters.database import UnitOfWork
from storefront.events.api import router as events_router
from storefront.events.consumer import run_consumer
from storefront.events.dead_letters import count_dead_letters, list_dead_letters
from storefront.events.envelope import Event, Payload
from storefront.events.handlers import HandlerRegistry
from storefront.events.outbox import add_events, outbox
from storefront.events.positions import sequence_of
from storefront.resources import Resources
from storefront.settings import Settings
from storefront.web.app import create_api
from storefront_dev.dlq import add_dlq_commands
from tests.integration.conftest import asgi_client
from tests.integration.streams import append_entry, budget, fast_settings, publish, stream_of

GROUP = "admin-test"


class Nudge(Payload):
    event_type: ClassVar[str] = "AdminTestNudge"
    aggregate_type: ClassVar[str] = "admin-test"


registry = HandlerRegistry(GROUP)


@registry.on(Nudge)
async def ignore(payload: Nudge, event: Event, uow: UnitOfWork) -> Sequence[Event]:
    return []


@pytest.fixture
async def admin(
    resources: Resources, admin_headers: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_api("t", [events_router], lambda: resources)
    app.state.consumer_groups = wiring.CONSUMER_GROUPS
    async with asgi_client(app, admin_headers) as client:
        yield client


# An event the group knows in no version but 1: dead-lettered, and it parses.
UNHANDLED = Event.of(Nudge(), "agg-admin").model_copy(update={"version": 99})


async def dead_letter_poison(
    resources: Resources, settings: Settings, count: int, envelope: str | None = None
) -> list[str]:
    """``count`` entries (unparseable ones unless ``envelope``), dead-lettered by a
    consumer; returns their stream ids."""
    stream = stream_of(settings, "agg-admin")
    ids = [
        await append_entry(resources.redis, stream, {"envelope": envelope or f"not json {n}"})
        for n in range(count)
    ]
    fast = fast_settings(settings, event_partitions=settings.event_partitions)
    for _ in range(20):  # short invocations, until the consumer has dealt with them all
        await run_consumer(registry, resources.engine, resources.redis, fast, budget(0.3))
        if await count_dead_letters(resources.engine) >= count:
            return ids
    raise AssertionError(f"the consumer did not dead-letter {count} entries")


async def test_status_shows_groups_outbox_and_dead_letters(
    admin: httpx.AsyncClient, resources: Resources, settings: Settings
) -> None:
    await publish(resources.redis, settings, Event.of(Nudge(), "agg-status"))
    await dead_letter_poison(resources, settings, 1)
    async with resources.engine.begin() as connection:
        await add_events(connection, [Event.of(Nudge(), "agg-unpublished")], 8)

    response = await admin.get("/admin/events")

    assert response.status_code == 200, response.text
    body = response.json()
    groups = {group["group"]: group for group in body["groups"]}
    assert set(groups) == {GROUP, *wiring.CONSUMER_GROUPS}
    assert (groups[GROUP]["lag"], groups[GROUP]["pending"]) == (0, 0)
    # A worker that never ran has every entry still to read: Nudge and the poison.
    assert groups["orders"]["lag"] == 2
    assert not any(partition["exists"] for partition in groups["orders"]["partitions"])
    assert len(groups[GROUP]["partitions"]) == settings.event_partitions
    assert body["outbox"]["unpublished"] == 1
    assert body["outbox"]["oldest_unpublished_age_seconds"] >= 0
    assert body["dead_letters"] == 1
    # PostgreSQL's view: the test group settled both entries (one on each of
    # two partitions); the unpublished row is not settled by anyone yet.
    settled = [partition["settled"] for partition in groups[GROUP]["partitions"]]
    assert sum(settled) == 2
    assert groups[GROUP]["unsettled"] == 1
    assert groups[GROUP]["oldest_unsettled_age_seconds"] >= 0
    assert [stream["partition"] for stream in body["streams"]] == list(
        range(settings.event_partitions)
    )
    assert all(stream["repairs"] == 0 for stream in body["streams"])


async def test_lists_and_replays_a_dead_letter(
    admin: httpx.AsyncClient, resources: Resources, settings: Settings
) -> None:
    (original_id,) = await dead_letter_poison(resources, settings, 1, UNHANDLED.model_dump_json())

    listed = await admin.get("/admin/dead-letters")
    (letter,) = listed.json()["items"]
    replayed = await admin.post(f"/admin/dead-letters/{letter['id']}/replay")

    assert listed.json()["total"] == 1
    assert letter["sequence"] == sequence_of(original_id)
    assert letter["group"] == GROUP
    assert letter["reason"] == "group 'admin-test' has no handler for AdminTestNudge version 99"
    assert letter["event_id"] == str(UNHANDLED.event_id)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["group"] == GROUP
    # Back in the outbox, for the group that gave up on it only.
    async with resources.engine.connect() as connection:
        row = (
            await connection.execute(
                select(outbox.c.event_id, outbox.c.only_group).where(
                    outbox.c.id == replayed.json()["outbox_id"]
                )
            )
        ).one()
    assert (row.event_id, row.only_group) == (UNHANDLED.event_id, GROUP)
    assert (await admin.get("/admin/dead-letters")).json() == {"items": [], "total": 0}


async def test_a_dead_letter_that_does_not_parse_is_not_replayed(
    admin: httpx.AsyncClient, resources: Resources, settings: Settings
) -> None:
    await dead_letter_poison(resources, settings, 1)
    (letter,) = (await admin.get("/admin/dead-letters")).json()["items"]

    response = await admin.post(f"/admin/dead-letters/{letter['id']}/replay")

    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert (await admin.get("/admin/dead-letters")).json()["total"] == 1


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/admin/dead-letters/999999/replay", 404),
        ("DELETE", "/admin/dead-letters/999999", 404),
        ("DELETE", "/admin/dead-letters/not-an-id", 422),
        ("POST", "/admin/dead-letters/99999999999999999999/replay", 422),
    ],
)
async def test_an_unknown_dead_letter_is_a_problem(
    admin: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await admin.request(method, path)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


async def test_deletes_one_dead_letter_then_purges_the_rest(
    admin: httpx.AsyncClient, resources: Resources, settings: Settings
) -> None:
    await dead_letter_poison(resources, settings, 3)
    first, *_ = (await admin.get("/admin/dead-letters")).json()["items"]

    deleted = await admin.delete(f"/admin/dead-letters/{first['id']}")
    purged = await admin.delete("/admin/dead-letters")

    assert deleted.status_code == 204
    assert purged.json() == {"purged": 2}
    assert await count_dead_letters(resources.engine) == 0


def dlq(*args: str) -> int:
    parser = argparse.ArgumentParser(prog="storefront")
    add_dlq_commands(parser.add_subparsers(dest="command", required=True))
    parsed = parser.parse_args(["dlq", *args])
    result: int = parsed.func(parsed)
    return result


async def test_the_cli_lists_replays_and_purges(
    resources: Resources,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await dead_letter_poison(resources, settings, 2, UNHANDLED.model_dump_json())
    first, second = [str(letter.id) for letter in await list_dead_letters(resources.engine)]
    monkeypatch.setenv("DATABASE_URL", settings.database_url or "")
    capsys.readouterr()

    # The CLI runs its own event loop, as a command does: off this test's loop.
    assert await asyncio.to_thread(dlq, "list") == 0
    listing = capsys.readouterr().out
    assert await asyncio.to_thread(dlq, "replay", first) == 0
    replayed = capsys.readouterr().out
    assert await asyncio.to_thread(dlq, "replay", first) == 1
    missing = capsys.readouterr().err
    assert await asyncio.to_thread(dlq, "purge") == 0
    purged = capsys.readouterr().out

    assert "2 dead letter(s)" in listing
    assert first in listing
    assert second in listing
    assert "reason: group 'admin-test' has no handler" in listing
    assert f"replayed {first} for {GROUP}: outbox row" in replayed
    assert f"No dead letter {first}." in missing
    assert "purged 1 dead letter(s)" in purged
