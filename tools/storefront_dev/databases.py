"""Creating and dropping whole databases (for the local stack and test runs)."""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import make_url


def _admin_dsn(server_url: str) -> str:
    url = make_url(server_url).set(drivername="postgresql", database="postgres")
    return url.render_as_string(hide_password=False)


def with_database(server_url: str, database: str) -> str:
    url = make_url(server_url).set(database=database)
    return url.render_as_string(hide_password=False)


async def create_database(server_url: str, database: str, *, exist_ok: bool = False) -> None:
    connection = await asyncpg.connect(_admin_dsn(server_url))
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if exists and exist_ok:
            return
        await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()


async def drop_database(server_url: str, database: str) -> None:
    connection = await asyncpg.connect(_admin_dsn(server_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await connection.close()
