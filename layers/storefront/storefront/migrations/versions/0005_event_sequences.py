"""event sequences: partition positions, consumer positions in PostgreSQL, dead letters

Each outbox row gets its partition's next sequence number when it is relayed
(the explicit id of its stream entry); the relay's position per partition and
each consumer group's position per partition live in PostgreSQL, so a Redis
that loses data loses nothing that cannot be republished. Dead letters move
to PostgreSQL for the same reason; a position replaces the inbox.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=nullable
    )


def upgrade() -> None:
    op.add_column("outbox", sa.Column("sequence", sa.BigInteger(), nullable=True))
    # A dead letter replayed for one group is a new row with the same event.
    op.add_column("outbox", sa.Column("only_group", sa.String(length=100), nullable=True))
    op.drop_constraint("uq_outbox_event_id", "outbox", type_="unique")
    op.create_index("ix_outbox_event_id", "outbox", ["event_id"])
    op.create_index(
        "ix_outbox_partition_sequence",
        "outbox",
        ["partition", "sequence"],
        unique=True,
        postgresql_where=sa.text("sequence IS NOT NULL"),
    )
    op.create_table(
        "event_partitions",
        sa.Column("partition", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("repairs", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "events_republished", sa.BigInteger(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("last_repaired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("partition", name=op.f("pk_event_partitions")),
    )
    op.create_table(
        "consumer_positions",
        sa.Column("group_name", sa.String(length=100), nullable=False),
        sa.Column("partition", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("group_name", "partition", name=op.f("pk_consumer_positions")),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("group_name", sa.String(length=100), nullable=False),
        sa.Column("partition", sa.SmallInteger(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        _now("failed_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    op.drop_index("ix_inbox_processed_at", table_name="inbox")
    op.drop_table("inbox")


def downgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        _now("processed_at"),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_inbox")),
    )
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"])
    op.drop_table("dead_letters")
    op.drop_table("consumer_positions")
    op.drop_table("event_partitions")
    op.drop_index("ix_outbox_partition_sequence", table_name="outbox")
    op.drop_index("ix_outbox_event_id", table_name="outbox")
    op.create_unique_constraint(op.f("uq_outbox_event_id"), "outbox", ["event_id"])
    op.drop_column("outbox", "only_group")
    op.drop_column("outbox", "sequence")
