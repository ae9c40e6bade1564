"""Resources.read_engine: the writer's engine unless a read endpoint is configured."""

from __future__ import annotations

from storefront.resources import Resources
from storefront.settings import Settings

WRITER = "postgresql://app@writer.example:5432/storefront"
READER = "postgresql://app@reader.example:5432/storefront"


async def test_without_a_read_endpoint_the_read_engine_is_the_writer_engine() -> None:
    resources = Resources.from_settings(Settings(database_url=WRITER))

    assert resources.read_engine is resources.engine
    assert resources._read_engine is None, "no second pool"
    await resources.close()


async def test_a_read_endpoint_gets_an_engine_of_its_own_that_close_disposes() -> None:
    resources = Resources.from_settings(Settings(database_url=WRITER, database_read_url=READER))

    read_engine = resources.read_engine

    assert read_engine is not resources.engine
    assert read_engine.url.host == "reader.example"
    assert resources.engine.url.host == "writer.example"
    assert resources.read_engine is read_engine, "one engine per container"
    await resources.close()
    assert resources._read_engine is None
    assert resources.read_engine is not read_engine, "reopened after close, as the writer's is"
    await resources.close()
