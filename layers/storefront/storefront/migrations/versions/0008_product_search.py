"""product search: a weighted search document, its GIN index, trigrams on names

``products.search`` is a generated column (name weighted A, description B, the
'simple' text search configuration), so PostgreSQL keeps it on every write;
adding it rewrites the table once. ``pg_trgm`` gives the trigram index on
names that typo tolerance reads (and that a ``name ILIKE '%...%'`` of
``GET /products?q=`` can use). It is a trusted extension (PostgreSQL 13 and
later): the database's owner may create it, on RDS and Aurora too.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As storefront.catalog.tables.SEARCH_DOCUMENT, written out: a migration
# stays as it ran, whatever the tables module says later.
_SEARCH_DOCUMENT = (
    "setweight(to_tsvector('simple'::regconfig, (name)::text), 'A'::\"char\") || "
    "setweight(to_tsvector('simple'::regconfig, description), 'B'::\"char\")"
)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.add_column(
        "products",
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            sa.Computed(_SEARCH_DOCUMENT, persisted=True),
            nullable=False,
        ),
    )
    # A short pending list (256 kB, not 4 MB): searches read it through
    # until a vacuum or the limit merges it into the index.
    op.create_index(
        "ix_products_search",
        "products",
        ["search"],
        postgresql_using="gin",
        postgresql_with={"gin_pending_list_limit": 256},
    )
    op.create_index(
        "ix_products_name_trgm",
        "products",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
        postgresql_with={"gin_pending_list_limit": 256},
    )


def downgrade() -> None:
    op.drop_index("ix_products_name_trgm", table_name="products")
    op.drop_index("ix_products_search", table_name="products")
    op.drop_column("products", "search")
    # pg_trgm stays: another schema in the database may have come to use it.
