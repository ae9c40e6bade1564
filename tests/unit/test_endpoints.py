"""Endpoint URLs, with the database secret read from Secrets Manager (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from storefront.adapters.endpoints import (
    MissingEndpoint,
    database_url,
    read_database_url,
    read_secret,
    redis_url,
)
from storefront.settings import Settings


@pytest.fixture(autouse=True)
def no_urls_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "DATABASE_HOST",
        "REDIS_HOST",
        "DATABASE_READ_HOST",
        "DATABASE_READ_URL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def secret_arn(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    read_secret.cache_clear()
    with mock_aws():
        created = boto3.client("secretsmanager").create_secret(
            Name="storefront/db",
            SecretString=json.dumps({"username": "app", "password": "p@ss:w/rd"}),
        )
        yield created["ARN"]
    read_secret.cache_clear()


def test_a_url_in_the_environment_wins() -> None:
    settings = Settings(database_url="postgresql://local/db", database_host="ignored")
    assert database_url(settings) == "postgresql://local/db"


def test_deployed_url_reads_the_secret_once(secret_arn: str) -> None:
    settings = Settings(
        database_host="proxy.example", database_secret_arn=secret_arn, database_tls=True
    )

    first = database_url(settings)
    boto3.client("secretsmanager").update_secret(
        SecretId=secret_arn, SecretString=json.dumps({"username": "x", "password": "y"})
    )
    second = database_url(settings)

    assert first == (
        "postgresql+asyncpg://app:p%40ss%3Aw%2Frd@proxy.example:5432/storefront?ssl=require"
    )
    assert second == first, "the secret is cached for the container's life"


def test_nothing_configured_is_a_clear_error() -> None:
    with pytest.raises(MissingEndpoint, match="DATABASE_URL"):
        database_url(Settings())
    with pytest.raises(MissingEndpoint, match="REDIS_URL"):
        redis_url(Settings())


def test_redis_url_from_parts() -> None:
    assert redis_url(Settings(redis_host="cache.example", redis_tls=True)) == (
        "rediss://cache.example:6379/0"
    )
    assert redis_url(Settings(redis_url="redis://x:1/0", redis_host="y")) == "redis://x:1/0"


def test_a_socket_directory_as_host_goes_into_the_query() -> None:
    settings = Settings(database_host="/run/postgresql", database_port=5433, database_name="db")

    assert database_url(settings) == ("postgresql+asyncpg://:5433/db?host=%2Frun%2Fpostgresql")


def test_the_read_host_has_the_writers_port_name_and_credentials(secret_arn: str) -> None:
    settings = Settings(
        database_host="proxy.example",
        database_read_host="proxy-read.example",
        database_port=6432,
        database_secret_arn=secret_arn,
        database_tls=True,
    )

    assert read_database_url(settings) == database_url(settings).replace(
        "@proxy.example:", "@proxy-read.example:"
    )
    assert "proxy-read.example:6432/storefront?ssl=require" in str(read_database_url(settings))


@pytest.mark.parametrize(
    "given",
    [
        {"database_host": "proxy.example"},
        # The database stack names the writer's endpoint when it has no reader.
        {"database_host": "proxy.example", "database_read_host": "proxy.example"},
        # A local URL pairs with a read URL; a deployed read host does not apply to it.
        {"database_url": "postgresql://local/db", "database_read_host": "proxy-read.example"},
    ],
    ids=["no read host", "the writer's own host", "a local url"],
)
def test_without_a_reader_reads_go_to_the_writer(given: dict[str, Any]) -> None:
    assert read_database_url(Settings(**given)) is None


def test_a_read_url_pairs_with_the_local_url() -> None:
    settings = Settings(
        database_url="postgresql://local:5432/db", database_read_url="postgresql://local:5433/db"
    )
    assert read_database_url(settings) == "postgresql://local:5433/db"
