"""A real localstripe (a stateful fake Stripe server) for the payment tests.

It is a dev dependency, so a missing executable fails the tests rather than
skipping them: a skipped payment suite would pass for the wrong reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from storefront.resources import Resources
from storefront_dev.embedded import EmbeddedStripe, start_localstripe

# The tests' name for it: a localstripe process they may stop and restart.
LocalStripe = EmbeddedStripe

# Any key works with localstripe; it only has to look like a test key.
TEST_SECRET_KEY = "sk_test_storefront"


@contextmanager
def running_localstripe() -> Iterator[LocalStripe]:
    """A localstripe of its own on a free port, stopped when the block ends."""
    server = start_localstripe()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def localstripe() -> Iterator[LocalStripe]:
    with running_localstripe() as server:
        yield server


@pytest.fixture
async def no_orders(resources: Resources, redis_key_prefix: str) -> None:
    """No orders, payments, Stripe events or events, in PostgreSQL or Redis:
    for the tests that use the database (the gateway's need none)."""
    async with resources.engine.begin() as connection:
        await connection.execute(
            text(
                "TRUNCATE orders, payment_intents, stripe_events, outbox, event_partitions,"
                " consumer_positions, dead_letters CASCADE"
            )
        )
    keys = [key async for key in resources.redis.scan_iter(match=f"{redis_key_prefix}*")]
    if keys:
        await resources.redis.delete(*keys)
