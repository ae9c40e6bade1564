"""Catalog tables (SQLAlchemy Core). The schema itself is owned by Alembic."""

from sqlalchemy import (
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Numeric,
    String,
    Table,
    Text,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

from storefront.adapters.database import metadata

# What full-text search reads: the name's words weighted A, the
# description's B, kept by PostgreSQL on every write (a generated column: no
# trigger, no code path that can forget it). The 'simple' configuration
# lowercases and does not stem or drop stop words, so a prefix typed so far
# matches the words as written (an English stem of "organi" is not a prefix of
# "organ", the stem of "organic"), and brand names and model numbers are kept
# as they are (docs/api.md, Search).
SEARCH_DOCUMENT = (
    "setweight(to_tsvector('simple'::regconfig, (name)::text), 'A'::\"char\") || "
    "setweight(to_tsvector('simple'::regconfig, description), 'B'::\"char\")"
)

categories = Table(
    "categories",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

products = Table(
    "products",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("sku", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("price", Numeric(12, 2), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("category_id", Uuid, ForeignKey("categories.id", ondelete="SET NULL")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("search", TSVECTOR, Computed(SEARCH_DOCUMENT, persisted=True), nullable=False),
    CheckConstraint("price > 0", name="price_positive"),
    # Keyset pages of one category: WHERE category_id = ? AND id > ? ORDER BY id.
    Index("ix_products_category_id_id", "category_id", "id"),
    # Full-text search: search @@ to_tsquery(...). Both GIN indexes queue
    # new entries in a pending list that every search reads through until a
    # vacuum (or the list's limit) merges it: 4 MB by default, which doubled
    # a search's time at 100,000 products; 256 kB bounds that, and bulk loads
    # stay several times faster than with no list at all (fastupdate off).
    Index(
        "ix_products_search",
        "search",
        postgresql_using="gin",
        postgresql_with={"gin_pending_list_limit": 256},
    ),
    # Typo tolerance (query <<% name), and GET /products?q= (name ILIKE '%q%').
    Index(
        "ix_products_name_trgm",
        "name",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
        postgresql_with={"gin_pending_list_limit": 256},
    ),
)

# Every column a Product has: the search document is the database's, not the API's.
PRODUCT_COLUMNS = tuple(column for column in products.c if column.name != "search")
