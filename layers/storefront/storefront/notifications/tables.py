"""Notifications tables (SQLAlchemy Core). The schema itself is owned by Alembic."""

from sqlalchemy import Column, DateTime, String, Table, Uuid, func

from storefront.adapters.database import metadata

# One row per event an email was sent for: claimed before the send (its own
# transaction), marked sent after it.
email_deliveries = Table(
    "email_deliveries",
    metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("order_id", Uuid, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("message_id", String(255)),
    Column("claimed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
)
