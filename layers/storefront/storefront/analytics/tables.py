"""Product-view tables (SQLAlchemy Core). The schema itself is owned by Alembic."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Table,
    Uuid,
    func,
)

from storefront.adapters.database import metadata

# Views per product and UTC day. No foreign key to products: a view counted
# in Redis must still flush after its product is deleted, or the flush of
# its whole batch would fail.
product_views_daily = Table(
    "product_views_daily",
    metadata,
    # Day first: the popular fallback and the top_viewed report read day ranges.
    Column("day", Date, primary_key=True),
    Column("product_id", Uuid, primary_key=True),
    Column("views", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("views >= 0", name="views_not_negative"),
)

# One row per applied flush batch, written in the transaction that applies it:
# a batch that is applied again (a flush died before deleting it from Redis,
# or two flushes overlapped) finds its row and changes nothing.
view_flush_batches = Table(
    "view_flush_batches",
    metadata,
    Column("batch_id", Uuid, primary_key=True),
    Column("views", BigInteger, nullable=False),
    Column("flushed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_view_flush_batches_flushed_at", "flushed_at"),
)
