"""inventory records the quantities each reservation holds

Inventory released an order's stock by reading the order's lines, a table of
another context. A reservation now keeps its own quantities (product id ->
quantity); existing reservations are filled in from the lines they were made
from.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "stock_reservations",
        sa.Column(
            "quantities",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.execute(
        """
        UPDATE stock_reservations r SET quantities = lines.quantities
        FROM (SELECT order_id, jsonb_object_agg(product_id::text, quantity) AS quantities
              FROM order_items GROUP BY order_id) AS lines
        WHERE lines.order_id = r.order_id
        """
    )


def downgrade() -> None:
    op.drop_column("stock_reservations", "quantities")
