"""Payments tables (SQLAlchemy Core). The schema itself is owned by Alembic."""

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, String, Table, Uuid, func

from storefront.adapters.database import metadata

# One PaymentIntent per order: its id, the client secret a front end confirms
# it with, and its last known status.
payment_intents = Table(
    "payment_intents",
    metadata,
    Column("order_id", Uuid, ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True),
    Column("intent_id", String(255), nullable=False, unique=True),
    Column("client_secret", String(255), nullable=False),
    Column("status", String(40), nullable=False),
    # In the currency's minor units, as Stripe counts.
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("refund_id", String(255)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Every Stripe event applied, inserted in the transaction of its effect: a
# duplicate or replayed webhook finds its id and changes nothing.
stripe_events = Table(
    "stripe_events",
    metadata,
    Column("event_id", String(255), primary_key=True),
    Column("event_type", String(100), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
