"""Dead letters: poison goes there at once, failures after N deliveries; replay and purge."""

from __future__ import annotations

import pytest

from storefront.errors import NotFound
from storefront.events.dead_letters import list_dead_letters, purge, replay
from storefront.events.envelope import Event
from storefront.events.relay import relay_once
from storefront.resources import Resources
from storefront.settings import Settings
from tests.integration.pinger import GROUP, Pinger, consume, pending, ping, pongs
from tests.integration.streams import append_entry, budget, fast_settings, publish, stream_of


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return fast_settings(settings)


async def test_unparseable_and_unknown_entries_are_dead_lettered_at_once(
    resources: Resources, fast: Settings
) -> None:
    stream = stream_of(fast, "agg-poison")
    unknown = Event(
        event_type="NoSuchEvent",
        version=1,
        aggregate_type="x",
        aggregate_id="agg-poison",
        payload={},
    )
    newer = ping("agg-poison", 1).model_copy(update={"version": 99})
    invalid = ping("agg-poison", 1).model_copy(update={"payload": {"seq": "not a number"}})
    for fields in (
        {"envelope": "{not json"},
        {"envelope": unknown.model_dump_json()},
        {"envelope": newer.model_dump_json()},
        {"envelope": invalid.model_dump_json()},
        {"something": "else"},
    ):
        await append_entry(resources.redis, stream, fields)
    await publish(resources.redis, fast, ping("agg-poison", 2))
    pinger = Pinger()

    stats = await consume(resources, fast, pinger, budget(10, pinger.attempted(1)))

    reasons = [letter.reason for letter in await list_dead_letters(resources.engine)]
    assert [reason.split(":")[0] for reason in reasons] == [
        "unparseable envelope",
        "unknown event type NoSuchEvent version 1",
        "group 'consumer-test' has no handler for ConsumerTestPing version 99",
        "invalid ConsumerTestPing version 1 payload",
        "the entry has no 'envelope' field",
    ]
    assert stats.dead_lettered == 5
    assert await pongs(resources) == [("agg-poison", 2)]
    assert await pending(resources.redis, fast) == 0


async def test_replay_puts_a_dead_letter_back_and_a_fixed_handler_handles_it(
    resources: Resources, fast: Settings
) -> None:
    once = fast.model_copy(update={"worker_max_deliveries": 1})
    event = ping("agg-replay", 7, fail=True)
    await publish(resources.redis, once, event)
    pinger = Pinger()
    await consume(resources, once, pinger, budget(10, pinger.attempted(1)))
    (letter,) = await list_dead_letters(resources.engine)

    pinger.failing = False  # the fix is deployed
    replayed = await replay(resources.engine, once.event_partitions, letter.id)
    await relay_once(resources.engine, resources.redis, once)
    other = Pinger(group="another-group", failing=False)
    await consume(resources, once, pinger, budget(10, pinger.attempted(2)))
    await consume(resources, once, other, budget(1.0))

    assert replayed.group == GROUP
    assert await list_dead_letters(resources.engine) == []
    # One answer from each group: the fixed one through the replay, the other
    # from the original, which it handles once (the replay is not for it).
    assert await pongs(resources) == [("agg-replay", 7)] * 2
    assert other.attempts == [("agg-replay", 7)]
    with pytest.raises(NotFound):
        await replay(resources.engine, once.event_partitions, letter.id)


async def test_purge_removes_one_dead_letter_or_all(resources: Resources, fast: Settings) -> None:
    stream = stream_of(fast, "agg-purge")
    for n in range(3):
        await append_entry(resources.redis, stream, {"envelope": f"not json {n}"})
    await consume(resources, fast, Pinger(), budget(1.0))
    first, *rest = await list_dead_letters(resources.engine)

    assert await purge(resources.engine, first.id) == 1
    assert await list_dead_letters(resources.engine) == rest
    with pytest.raises(NotFound):
        await purge(resources.engine, first.id)
    assert await purge(resources.engine) == 2
    assert await list_dead_letters(resources.engine) == []
