"""Admin routes and ``storefront dlq``: event status and dead letters on real servers."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import ClassVar

import httpx
import pytest

from storefront.adapters.database import UnitOfWork
from storefront.events.api import router as events_router
from storefront.events.consumer import run_consumer
from storefront.events.dead_letters import count_dead_letters, list_dead_letters
from storefront.events.envelope import Event, Payload
from storefront.events.groups import CONSUMER_GROUPS
from storefront.events.handlers import HandlerRegistry
from storefront.events.outbox import add_events
from storefront.events.partitions import dead_letter_key
from storefront.resources import Resources
from storefront.settings import Settings
from storefront.web.app import create_api
from storefront_dev.dlq import add_dlq_commands
from tests.integration.conftest import asgi_client
from tests.integration.streams import budget, fast_settings, publish, stream_of

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
    async with asgi_client(app, admin_headers) as client:
        yield client


async def dead_letter_poison(resources: Resources, settings: Settings, count: int) -> list[str]:
    """``count`` unparseable entries, dead-lettered by a consumer; returns their stream ids."""
    stream = stream_of(settings, "agg-admin")
    ids = [
        (await resources.redis.xadd(stream, {"envelope": f"not json {n}"})).decode()
        for n in range(count)
    ]
    fast = fast_settings(settings, event_partitions=settings.event_partitions)
    for _ in range(20):  # short invocations, until the consumer has dealt with them all
        await run_consumer(registry, resources.engine, resources.redis, fast, budget(0.3))
        if await count_dead_letters(resources.redis, settings) >= count:
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
    assert set(groups) == {GROUP, *CONSUMER_GROUPS}
    assert (groups[GROUP]["lag"], groups[GROUP]["pending"]) == (0, 0)
    # A worker that never ran has every entry still to read: Nudge and the poison.
    assert groups["orders"]["lag"] == 2
    assert not any(partition["exists"] for partition in groups["orders"]["partitions"])
    assert len(groups[GROUP]["partitions"]) == settings.event_partitions
    assert body["outbox"]["unpublished"] == 1
    assert body["outbox"]["oldest_unpublished_age_seconds"] >= 0
    assert body["dead_letters"] == 1


async def test_lists_and_replays_a_dead_letter(
    admin: httpx.AsyncClient, resources: Resources, settings: Settings
) -> None:
    (original_id,) = await dead_letter_poison(resources, settings, 1)

    listed = await admin.get("/admin/dead-letters")
    (letter,) = listed.json()["items"]
    replayed = await admin.post(f"/admin/dead-letters/{letter['id']}/replay")

    assert listed.json()["total"] == 1
    assert letter["original_id"] == original_id
    assert letter["group"] == GROUP
    assert letter["reason"].startswith("unparseable envelope")
    assert letter["envelope"] == "not json 0"
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["stream"] == stream_of(settings, "agg-admin")
    entries = await resources.redis.xrange(stream_of(settings, "agg-admin"))
    assert entries[-1][0].decode() == replayed.json()["stream_id"]
    assert entries[-1][1] == {b"envelope": b"not json 0"}
    assert (await admin.get("/admin/dead-letters")).json() == {"items": [], "total": 0}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/admin/dead-letters/1-0/replay"),
        ("DELETE", "/admin/dead-letters/1-0"),
        ("DELETE", "/admin/dead-letters/not-an-id"),
    ],
)
async def test_an_unknown_dead_letter_is_404(
    admin: httpx.AsyncClient, method: str, path: str
) -> None:
    response = await admin.request(method, path)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Not found"


async def test_deletes_one_dead_letter_then_purges_the_rest(
    admin: httpx.AsyncClient, resources: Resources, settings: Settings
) -> None:
    await dead_letter_poison(resources, settings, 3)
    first, *_ = (await admin.get("/admin/dead-letters")).json()["items"]

    deleted = await admin.delete(f"/admin/dead-letters/{first['id']}")
    purged = await admin.delete("/admin/dead-letters")

    assert deleted.status_code == 204
    assert purged.json() == {"purged": 2}
    assert await resources.redis.exists(dead_letter_key(settings.redis_key_prefix)) == 0


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
    await dead_letter_poison(resources, settings, 2)
    first, second = [letter.id for letter in await list_dead_letters(resources.engine)]
    monkeypatch.setenv("REDIS_URL", settings.redis_url or "")
    monkeypatch.setenv("REDIS_KEY_PREFIX", settings.redis_key_prefix)
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
    assert "reason: unparseable envelope" in listing
    assert f"replayed {first} onto {stream_of(settings, 'agg-admin')}" in replayed
    assert f"No dead letter {first}." in missing
    assert "purged 1 dead letter(s)" in purged
