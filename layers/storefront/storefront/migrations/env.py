"""Alembic environment: runs migrations on the async engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import storefront.analytics.tables
import storefront.catalog.tables
import storefront.events.outbox
import storefront.idempotency
import storefront.inventory.tables
import storefront.notifications.tables
import storefront.orders.tables
import storefront.payments.tables
import storefront.reports.tables  # noqa: F401
from storefront.adapters.database import metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    engine = create_async_engine(url, connect_args={"statement_cache_size": 0})
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _main() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "storefront.migrate sets sqlalchemy.url"
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_online(url))


_main()
