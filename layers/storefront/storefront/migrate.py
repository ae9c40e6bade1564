"""Apply the Alembic migrations (``storefront migrate``; later, the deploy-time function)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from storefront.adapters.database import asyncpg_url


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "storefront:migrations")
    config.set_main_option("sqlalchemy.url", asyncpg_url(database_url).replace("%", "%%"))
    return config


def upgrade_to_head(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()
