"""Prepared statements: one-shot behind a pooling proxy, kept where the setting asks."""

from __future__ import annotations

from sqlalchemy import text

from storefront.adapters.database import create_engine
from storefront.settings import Settings

QUERY = text("SELECT count(*) FROM products WHERE price > :price")


async def statements_left_after_running_twice(settings: Settings) -> list[str]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            for _ in range(2):
                await connection.execute(QUERY, {"price": 1})
            prepared = await connection.execute(
                text("SELECT statement FROM pg_prepared_statements WHERE from_sql IS false")
            )
            return [row.statement for row in prepared]
    finally:
        await engine.dispose()


async def test_by_default_no_statement_outlives_its_use(settings: Settings) -> None:
    """Behind RDS Proxy or PgBouncer a kept statement could be asked of
    another server connection, where it does not exist."""
    assert not any(
        "FROM products" in statement
        for statement in await statements_left_after_running_twice(settings)
    )


async def test_the_event_backbone_keeps_its_statements_prepared(settings: Settings) -> None:
    kept = await statements_left_after_running_twice(
        settings.model_copy(update={"database_statement_cache": True})
    )
    assert sum("FROM products" in statement for statement in kept) == 1
