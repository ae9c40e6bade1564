"""The demo catalog loads once, into a database of its own (not the suite's shared one)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from storefront.resources import Resources
from storefront.settings import Settings
from storefront_dev.demo import DEMO_CATALOG, load_demo_catalog
from tests.conftest import own_database


@pytest.fixture
def fresh_database(database_server_url: str) -> Iterator[str]:
    # Synchronous: Alembic's async environment runs its own event loop.
    with own_database(database_server_url, "demo") as url:
        yield url


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
