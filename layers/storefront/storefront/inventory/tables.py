"""Inventory tables (SQLAlchemy Core). The schema itself is owned by Alembic."""

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    Table,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from storefront.adapters.database import metadata

stock_levels = Table(
    "stock_levels",
    metadata,
    Column("product_id", Uuid, ForeignKey("products.id", ondelete="CASCADE"), primary_key=True),
    Column("on_hand", Integer, nullable=False),
    Column("reserved", Integer, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
    CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="reserved_within_on_hand"),
)

# One row per order whose items are held, with what it holds (product id ->
# quantity: inventory's own record, so releasing reads no other context's
# table); released_at is set on compensation.
stock_reservations = Table(
    "stock_reservations",
    metadata,
    Column("order_id", Uuid, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("reserved_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("released_at", DateTime(timezone=True)),
    Column("quantities", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
)
