"""Where PostgreSQL and Redis are, as URLs the drivers take.

A URL in the environment wins (local stack, tests). A deployed function gets
host, port and name from the template and reads the database credentials from
the Secrets Manager secret RDS manages, once per container: the password never
sits in the template, the environment or a log line.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import URL

from storefront.settings import Settings


class MissingEndpoint(RuntimeError):
    pass


def database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    if not settings.database_host:
        raise MissingEndpoint("set DATABASE_URL, or DATABASE_HOST with DATABASE_SECRET_ARN")
    return _url_on(settings, settings.database_host)


def read_database_url(settings: Settings) -> str | None:
    """Where reads that tolerate replica lag go; None: to the writer.

    DATABASE_READ_URL pairs with DATABASE_URL, DATABASE_READ_HOST with
    DATABASE_HOST (deployed: the same port, name and credentials on another
    host). A read host equal to the writer's is no reader at all: the nested
    database stack names the writer's endpoint when it has no reader, and a
    second pool to the same server would only double the connections.
    """
    if settings.database_read_url:
        return settings.database_read_url
    host = settings.database_read_host
    if settings.database_url or not host or host == settings.database_host:
        return None
    return _url_on(settings, host)


def _url_on(settings: Settings, host: str) -> str:
    username = password = None
    if settings.database_secret_arn:
        secret = read_secret(settings.database_secret_arn)
        username, password = secret["username"], secret["password"]
    query = {"ssl": "require"} if settings.database_tls else {}
    tcp_host: str | None = host
    if host.startswith("/"):
        # A Unix-socket directory, as libpq takes it (an embedded server's):
        # asyncpg reads it from the query; the port names the socket file.
        query, tcp_host = query | {"host": host}, None
    url = URL.create(
        "postgresql+asyncpg",
        username=username,
        password=password,
        host=tcp_host,
        port=settings.database_port,
        database=settings.database_name,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def redis_url(settings: Settings) -> str:
    if settings.redis_url:
        return settings.redis_url
    if not settings.redis_host:
        raise MissingEndpoint("set REDIS_URL, or REDIS_HOST")
    scheme = "rediss" if settings.redis_tls else "redis"
    return f"{scheme}://{settings.redis_host}:{settings.redis_port}/0"


# The JSON field of a Secrets Manager secret that holds a single secret
# (the HS256 key, the Stripe key): {"secret": "..."}.
SECRET_FIELD = "secret"  # noqa: S105 (the field's name, not a secret)


def given_or_stored_secret(
    given: str | None, secret_arn: str | None, *, names: tuple[str, str], error: type[Exception]
) -> str:
    """A secret set directly (local stacks, tests: ``names[0]``) or kept in
    Secrets Manager (deployed: the ARN in ``names[1]``); ``error`` when neither
    gives one."""
    if given:
        return given
    if not secret_arn:
        raise error(f"set {names[0]} or {names[1]}")
    value = read_secret(secret_arn).get(SECRET_FIELD)
    if not isinstance(value, str):
        raise error(f"the {names[1]} secret has no {SECRET_FIELD!r} field")
    return value


@lru_cache(maxsize=8)
def read_secret(secret_arn: str) -> dict[str, Any]:
    """A JSON secret, fetched once per container.

    boto3 is imported here, not at module level: it costs ~100 ms of cold
    start that functions reading no secret should not pay.
    """
    import boto3

    client = boto3.client("secretsmanager")
    value: dict[str, Any] = json.loads(client.get_secret_value(SecretId=secret_arn)["SecretString"])
    return value
