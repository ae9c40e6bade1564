"""checkout: orders awaiting payment, payment intents, webhook events, emails

Orders placed by checkout wait in AWAITING_PAYMENT until ``payment_due_at``
(their stock held meanwhile) and end CONFIRMED, EXPIRED or PAYMENT_FAILED;
they carry the address their emails go to. The payments context records one
PaymentIntent per order and every Stripe event id it has applied; the
notifications context records every email it has sent, by the event that
asked for it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = (
    "'PENDING', 'AWAITING_PAYMENT', 'CONFIRMED', 'REJECTED', 'CANCELLED', 'EXPIRED',"
    " 'PAYMENT_FAILED'"
)
_OLD_STATUSES = "'PENDING', 'CONFIRMED', 'REJECTED', 'CANCELLED'"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_orders_status_known"), "orders", type_="check")
    op.create_check_constraint(op.f("ck_orders_status_known"), "orders", f"status IN ({_STATUSES})")
    op.add_column("orders", sa.Column("email", sa.String(254)))
    op.add_column("orders", sa.Column("payment_due_at", sa.DateTime(timezone=True)))
    # The sweep's and the stuck-payment alarm's read: only orders still waiting.
    op.create_index(
        "ix_orders_awaiting_payment_due",
        "orders",
        ["payment_due_at"],
        postgresql_where=sa.text("status = 'AWAITING_PAYMENT'"),
    )
    # The per-customer caps read the customer's orders awaiting payment.
    op.create_index(
        "ix_orders_customer_awaiting",
        "orders",
        ["customer_id"],
        postgresql_where=sa.text("status = 'AWAITING_PAYMENT'"),
    )

    op.create_table(
        "payment_intents",
        sa.Column(
            "order_id",
            sa.Uuid(),
            sa.ForeignKey("orders.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("intent_id", sa.String(255), nullable=False, unique=True),
        sa.Column("client_secret", sa.String(255), nullable=False),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("refund_id", sa.String(255)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_table(
        "stripe_events",
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    )
    op.create_table(
        "email_deliveries",
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("message_id", sa.String(255)),
        sa.Column(
            "claimed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("email_deliveries")
    op.drop_table("stripe_events")
    op.drop_table("payment_intents")
    op.drop_index("ix_orders_customer_awaiting", "orders")
    op.drop_index("ix_orders_awaiting_payment_due", "orders")
    op.drop_column("orders", "payment_due_at")
    op.drop_column("orders", "email")
    op.execute(
        "UPDATE orders SET status = 'CANCELLED'"
        " WHERE status IN ('AWAITING_PAYMENT', 'EXPIRED', 'PAYMENT_FAILED')"
    )
    op.drop_constraint(op.f("ck_orders_status_known"), "orders", type_="check")
    op.create_check_constraint(
        op.f("ck_orders_status_known"), "orders", f"status IN ({_OLD_STATUSES})"
    )
