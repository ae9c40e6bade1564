"""The demo catalog loads once, into a database of its own (not the suite's shared one)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from storefront.migrate import upgrade_to_head
from storefront.resources import Resources
from storefront.settings import Settings
from storefront_dev.databases import create_database, drop_database, with_database
from storefront_dev.demo import DEMO_CATALOG, load_demo_catalog


@pytest.fixture
def fresh_database(database_server_url: str) -> Iterator[str]:
    # Synchronous: Alembic's async environment runs its own event loop.
    name = f"storefront_demo_{uuid.uuid4().hex[:10]}"
    asyncio.run(create_database(database_server_url, name))
    url = with_database(database_server_url, name)
    upgrade_to_head(url)
    yield url
    asyncio.run(drop_database(database_server_url, name))


@pytest.fixture
async def fresh_resources(
    fresh_database: str, redis_url: str, redis_key_prefix: str
) -> AsyncIterator[Resources]:
    settings = Settings(
        database_url=fresh_database,
        redis_url=redis_url,
        redis_key_prefix=f"{redis_key_prefix}demo:",
    )
    resources = Resources.from_settings(settings)
    yield resources
    await resources.close()


async def test_the_demo_catalog_loads_once(fresh_resources: Resources) -> None:
    engine, cache = fresh_resources.engine, fresh_resources.cache
    first = await load_demo_catalog(engine, cache)
    assert first.created_categories == len(DEMO_CATALOG)
    assert first.created_products == sum(len(items) for items in DEMO_CATALOG.values())
    assert first.sample_product_id is not None

    second = await load_demo_catalog(engine, cache)
    assert (second.created_products, second.created_categories) == (0, 0)
    assert second.sample_product_id == first.sample_product_id
