"""Builds one report: its aggregate streamed from PostgreSQL into the object store.

The query runs on a connection of its own, in a transaction of its own: a
server-side cursor (``stream`` with ``yield_per``) only lives inside one, and
the builder's caller keeps its transaction (the report row's lock and the
position) free to record the outcome whatever happens here. Rows flow
cursor -> encoder -> upload a fetch at a time; nothing holds the whole result.

Whatever a person can fix ends as :class:`BuildFailed` with a reason that
says what to do. An unreachable database is not such a failure: it
propagates, and the event is retried.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from storefront.adapters.database import is_unavailable
from storefront.adapters.object_store import ObjectStore, ObjectStoreError
from storefront.reports.aggregates import aggregate
from storefront.reports.domain import Report, object_key
from storefront.reports.formats import RowCount, encode
from storefront.settings import Settings

__all__ = ["BuildFailed", "Built", "build"]


@dataclass(frozen=True)
class Built:
    object_key: str
    content_type: str
    size_bytes: int
    row_count: int
    parts: int


class BuildFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def build(
    report: Report, engine: AsyncEngine, store: ObjectStore, settings: Settings
) -> Built:
    key = object_key(report.id, report.format)
    content_type = report.format.content_type
    count = RowCount()
    statement = aggregate(report.type, report.date_from, report.date_to).execution_options(
        yield_per=settings.report_fetch_rows
    )
    timeout = settings.report_build_timeout_seconds
    try:
        async with (
            asyncio.timeout(timeout),
            engine.connect() as connection,
            connection.begin(),
        ):
            result = await connection.stream(statement)
            stored = await store.put_stream(
                key,
                # A partition is one fetch of ``yield_per`` rows: one hop into
                # the driver per fetch, not per row.
                encode(report, list(result.keys()), result.partitions(), count),
                content_type=content_type,
                filename=report.filename,
            )
    except TimeoutError:
        raise BuildFailed(
            f"the report took longer than {timeout:g} s to build: ask for a shorter range"
        ) from None
    except ObjectStoreError as error:
        raise BuildFailed(error.reason) from error
    except DBAPIError as error:
        if is_unavailable(error):
            raise
        cause = type(error.orig).__name__ if error.orig is not None else type(error).__name__
        raise BuildFailed(
            f"the database refused the report query ({cause}); a shorter range may pass"
        ) from error
    return Built(key, content_type, stored.size_bytes, count.rows, stored.parts)
