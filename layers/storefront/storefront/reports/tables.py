"""Report tables (SQLAlchemy Core). The schema itself is owned by Alembic."""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    String,
    Table,
    Text,
    Uuid,
    func,
)

from storefront.adapters.database import metadata

reports = Table(
    "reports",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("type", String(40), nullable=False),
    Column("format", String(10), nullable=False),
    Column("date_from", Date, nullable=False),
    Column("date_to", Date, nullable=False),
    Column("status", String(20), nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("object_key", String(300)),
    Column("content_type", String(100)),
    Column("size_bytes", BigInteger),
    Column("row_count", BigInteger),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("completed_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('PENDING', 'READY', 'FAILED')", name="status_known"),
    CheckConstraint("date_from <= date_to", name="range_ordered"),
    # Newest-first keyset pages, all or of one status.
    Index("ix_reports_status_id", "status", "id"),
)
