"""Order tables (SQLAlchemy Core). The schema itself is owned by Alembic."""

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
    func,
    text,
)

from storefront.adapters.database import metadata

orders = Table(
    "orders",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("customer_id", String(200)),
    Column("status", String(20), nullable=False),
    Column("total", Numeric(12, 2), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", Text),
    # Checkout's orders: where their emails go, and when their held stock is
    # released unless paid.
    Column("email", String(254)),
    Column("payment_due_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(
        "status IN ('PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'REJECTED', 'CANCELLED',"
        " 'EXPIRED', 'PAYMENT_FAILED')",
        name="status_known",
    ),
    Index("ix_orders_status_id", "status", "id"),
    Index("ix_orders_customer_id_id", "customer_id", "id"),
    # Reports aggregate the orders placed in a range of days.
    Index("ix_orders_created_at", "created_at"),
    # The expiry sweep's and the per-customer caps' reads: orders still waiting.
    Index(
        "ix_orders_awaiting_payment_due",
        "payment_due_at",
        postgresql_where=text("status = 'AWAITING_PAYMENT'"),
    ),
    Index(
        "ix_orders_customer_awaiting",
        "customer_id",
        postgresql_where=text("status = 'AWAITING_PAYMENT'"),
    ),
)

order_items = Table(
    "order_items",
    metadata,
    Column("order_id", Uuid, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("product_id", Uuid, ForeignKey("products.id"), primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Numeric(12, 2), nullable=False),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)
