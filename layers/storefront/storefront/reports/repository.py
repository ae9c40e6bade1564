"""Report persistence on one connection (the unit of work's transaction)."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storefront.reports.domain import Report, ReportQuery, ReportStatus
from storefront.reports.tables import reports


async def add_report(connection: AsyncConnection, report: Report) -> None:
    await connection.execute(
        insert(reports).values(
            report.model_dump(
                include={
                    "id",
                    "type",
                    "format",
                    "date_from",
                    "date_to",
                    "status",
                    "requested_by",
                    "created_at",
                }
            )
        )
    )


async def get_report(
    connection: AsyncConnection, report_id: UUID, *, for_update: bool = False
) -> Report | None:
    """One report; ``for_update`` locks its row, as its builder does while it works."""
    statement = select(reports).where(reports.c.id == report_id)
    if for_update:
        statement = statement.with_for_update()
    row = (await connection.execute(statement)).first()
    return None if row is None else Report.model_validate(row._mapping)


async def list_reports(connection: AsyncConnection, query: ReportQuery) -> list[Report]:
    """Up to ``query.limit + 1`` reports, newest first (ids are time-ordered)."""
    statement = select(reports).order_by(reports.c.id.desc()).limit(query.limit + 1)
    if query.before is not None:
        statement = statement.where(reports.c.id < query.before)
    if query.status is not None:
        statement = statement.where(reports.c.status == query.status.value)
    return [Report.model_validate(row._mapping) for row in await connection.execute(statement)]


async def mark_ready(
    connection: AsyncConnection,
    report_id: UUID,
    *,
    object_key: str,
    content_type: str,
    size_bytes: int,
    row_count: int,
) -> None:
    await connection.execute(
        update(reports)
        .where(reports.c.id == report_id)
        .values(
            status=ReportStatus.READY.value,
            object_key=object_key,
            content_type=content_type,
            size_bytes=size_bytes,
            row_count=row_count,
            reason=None,
            completed_at=func.now(),
        )
    )


async def mark_failed(connection: AsyncConnection, report_id: UUID, reason: str) -> None:
    await connection.execute(
        update(reports)
        .where(reports.c.id == report_id)
        .values(status=ReportStatus.FAILED.value, reason=reason, completed_at=func.now())
    )


async def remove_report(connection: AsyncConnection, report_id: UUID) -> Report | None:
    """Delete a report's row; waits for a build in progress (it holds the row)."""
    report = await get_report(connection, report_id, for_update=True)
    if report is not None:
        await connection.execute(delete(reports).where(reports.c.id == report_id))
    return report
