"""Real PostgreSQL and Redis for the whole suite.

The servers are the ones TEST_DATABASE_URL / TEST_REDIS_URL name, else
embedded ones started for this session. Each run creates and drops its own
database and writes Redis keys only under its own prefix, so runs never
collide or leak state.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from storefront.migrate import upgrade_to_head
from storefront.resources import Resources
from storefront.settings import Settings
from storefront_dev.databases import create_database, drop_database, with_database
from storefront_dev.embedded import (
    LOCAL_AWS_CREDENTIALS,
    EmbeddedS3,
    start_postgres,
    start_redis,
    start_s3,
)
from storefront_dev.local_auth import LocalAuth, mint_token

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = uuid.uuid4().hex[:10]
# HS256, as the local stack runs: tests mint their own tokens with this secret.
TEST_AUTH = LocalAuth(
    secret="storefront-test-secret-" + "0123456789abcdef" * 2,
    issuer="storefront-test",
    audience="storefront",
    admin_claim="cognito:groups",
    admin_value="admin",
)
ADMIN_SUBJECT = "test-admin"


@pytest.fixture(scope="session")
def database_server_url() -> Iterator[str]:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    # Not under pytest's temporary root: run as root, the embedded server serves from a
    # user of its own and opens the path to it, and every new pytest session
    # closes that root again (mode 0700), which cut off the server of a
    # session still running (PANIC: could not open pg_control).
    with tempfile.TemporaryDirectory(prefix="storefront-test-pg-") as data_dir:
        server = start_postgres(Path(data_dir))
        yield server.url()
        server.stop()


@contextmanager
def own_database(server_url: str, label: str, *, migrated: bool = True) -> Iterator[str]:
    """A database of its own on ``server_url``, dropped when the block ends."""
    name = f"storefront_{label}_{uuid.uuid4().hex[:10]}"
    asyncio.run(create_database(server_url, name))
    url = with_database(server_url, name)
    try:
        if migrated:
            upgrade_to_head(url)
        yield url
    finally:
        asyncio.run(drop_database(server_url, name))


@pytest.fixture(scope="session")
def database_url(database_server_url: str) -> Iterator[str]:
    """A freshly migrated database of this run's own, dropped at the end."""
    with own_database(database_server_url, f"test_{RUN_ID}") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    given = os.environ.get("TEST_REDIS_URL")
    if given:
        yield given
        return
    server = start_redis()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def s3() -> Iterator[EmbeddedS3]:
    """moto's S3 server, over real HTTP (presigned URLs download), with a bucket
    of this run's own; boto3 finds moto's dummy credentials in the environment."""
    saved = {name: os.environ.get(name) for name in LOCAL_AWS_CREDENTIALS}
    os.environ.update(LOCAL_AWS_CREDENTIALS)
    server = start_s3(f"storefront-reports-{RUN_ID}")
    yield server
    server.stop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def redis_key_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"test-{RUN_ID}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    client.close()


def suite_settings(
    database_url: str, redis_url: str, redis_key_prefix: str, **more: Any
) -> Settings:
    """The suite's settings on these servers (tests/cluster uses them with a cluster)."""
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        redis_key_prefix=redis_key_prefix,
        **TEST_AUTH.settings() | more,
    )


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str, redis_key_prefix: str) -> Settings:
    return suite_settings(database_url, redis_url, redis_key_prefix)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_for(subject: str, *, admin: bool = False) -> str:
    """A valid token for the test settings (a day long: sessions never outlive it)."""
    return mint_token(TEST_AUTH, subject, admin=admin, ttl_seconds=86_400)


@pytest.fixture(scope="session")
def admin_headers() -> dict[str, str]:
    return bearer(token_for(ADMIN_SUBJECT, admin=True))


@pytest.fixture(scope="session")
def customer_headers() -> Callable[[str], dict[str, str]]:
    """``customer_headers("alice")``: the headers of a customer's request."""
    return lambda subject: bearer(token_for(subject))


@pytest.fixture(scope="session")
async def resources(settings: Settings) -> AsyncIterator[Resources]:
    resources = Resources.from_settings(settings)
    yield resources
    await resources.close()
