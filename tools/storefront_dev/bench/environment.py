"""The servers a benchmark or chaos run talks to, and a database of its own.

Like ``make test``: the servers named by ``BENCH_DATABASE_URL`` /
``BENCH_REDIS_URL`` (else ``TEST_*``) when set, else embedded ones started for
the run. Every run creates its own database and writes Redis keys only under
its own prefix, and removes both at the end, so it never touches another
run's data on a shared server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import redis

from storefront.migrate import upgrade_to_head
from storefront.settings import Settings
from storefront_dev.bench.processes import project_root
from storefront_dev.databases import create_database, drop_database, with_database
from storefront_dev.embedded import start_postgres, start_redis
from storefront_dev.local_auth import LocalAuth, mint_token
from storefront_dev.templates import load_template

__all__ = ["BENCH_AUTH", "BenchEnvironment", "bench_environment", "server_urls"]

# HS256 with a throwaway secret, as the test suite does: the benchmarks mint
# their own tokens and verify them the way a deployed HS256 stack would.
BENCH_AUTH = LocalAuth(
    secret="storefront-bench-secret-" + "0123456789abcdef" * 2,
    issuer="storefront-bench",
    audience="storefront",
    admin_claim="cognito:groups",
    admin_value="admin",
)


@dataclass(frozen=True)
class BenchEnvironment:
    server_url: str  # the PostgreSQL server (its maintenance database)
    database_url: str  # this run's own database on it
    redis_url: str
    redis_key_prefix: str
    settings: Settings

    def environment(self) -> dict[str, str]:
        """What a function process needs to run against this environment."""
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "REDIS_KEY_PREFIX": self.redis_key_prefix,
            # No X-Ray daemon here; logs and EMF metrics stay on, as deployed.
            "POWERTOOLS_TRACE_DISABLED": "true",
            **BENCH_AUTH.environment(),
            **_UNMETERED,
        }

    def settings_of(self, function: str) -> Settings:
        """The settings as ``function`` (a logical id in template.yaml) runs
        with them: the statement cache is per function (the event backbone
        keeps its statements prepared, the APIs do not)."""
        spec = load_template(project_root() / "template.yaml").functions[function]
        cached = spec.environment.get("DATABASE_STATEMENT_CACHE", "false").lower() == "true"
        return self.settings.model_copy(update={"database_statement_cache": cached})

    def token(self, subject: str, *, admin: bool = False) -> str:
        return mint_token(BENCH_AUTH, subject, admin=admin, ttl_seconds=3600)

    async def versions(self) -> dict[str, str]:
        connection = await asyncpg.connect(self.database_url)
        try:
            postgres = str(await connection.fetchval("SHOW server_version"))
        finally:
            await connection.close()
        client = redis.Redis.from_url(self.redis_url)
        try:
            info = client.info("server")
        finally:
            client.close()
        return {"postgresql": postgres, "redis": str(info["redis_version"])}


# The benchmarks send thousands of requests per minute from one caller; the
# limiter still runs (its cost is part of every request), it just never says no.
_UNMETERED = {
    "RATE_LIMIT_READ": "100000000/minute",
    "RATE_LIMIT_WRITE": "100000000/minute",
    "RATE_LIMIT_ORDERS": "100000000/minute",
    "RATE_LIMIT_ANONYMOUS": "100000000/minute",
    "RATE_LIMIT_FAILED_AUTH": "100000000/minute",
}


@contextlib.contextmanager
def server_urls(variables: str = "BENCH") -> Iterator[tuple[str, str]]:
    """(PostgreSQL server URL, Redis URL): given ones, else embedded, stopped at the end."""
    database = os.environ.get(f"{variables}_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get(f"{variables}_REDIS_URL") or os.environ.get("TEST_REDIS_URL")
    with contextlib.ExitStack() as stack:
        if not database:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sf-bench-")))
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
                postgres = start_postgres(scratch / "pg")
            stack.callback(postgres.stop)
            database = postgres.url()
        if not redis_url:
            embedded = start_redis()
            stack.callback(embedded.stop)
            redis_url = embedded.url
        yield database, redis_url


@contextlib.contextmanager
def bench_environment(
    server_url: str, redis_url: str, label: str = "bench"
) -> Iterator[BenchEnvironment]:
    """A migrated database and a Redis prefix of this run's own, removed at the end."""
    run_id = uuid.uuid4().hex[:10]
    name = f"storefront_{label}_{run_id}"
    prefix = f"{label}-{run_id}:"
    asyncio.run(create_database(server_url, name))
    try:
        database_url = with_database(server_url, name)
        upgrade_to_head(database_url)
        unmetered: dict[str, Any] = {name.lower(): value for name, value in _UNMETERED.items()}
        settings = Settings(
            database_url=database_url,
            redis_url=redis_url,
            redis_key_prefix=prefix,
            **BENCH_AUTH.settings(),
            **unmetered,
        )
        yield BenchEnvironment(server_url, database_url, redis_url, prefix, settings)
    finally:
        try:
            forget_prefix(redis_url, prefix)
        finally:
            asyncio.run(drop_database(server_url, name))


def forget_prefix(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                client.delete(*batch)
                batch.clear()
        if batch:
            client.delete(*batch)
    finally:
        client.close()
