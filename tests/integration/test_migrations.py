"""The migrations build exactly the schema the table definitions describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

import storefront.analytics.tables
import storefront.catalog.tables
import storefront.events.outbox
import storefront.idempotency
import storefront.inventory.tables
import storefront.notifications.tables
import storefront.orders.tables
import storefront.payments.tables
import storefront.reports.tables  # noqa: F401  (register every table)
from storefront.adapters.database import metadata
from storefront.migrate import head_revision
from storefront.resources import Resources


async def test_migrated_schema_matches_the_tables(resources: Resources) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert context.get_current_revision() == head_revision()
        return list(compare_metadata(context, metadata))

    async with resources.engine.connect() as connection:
        assert await connection.run_sync(differences) == []
