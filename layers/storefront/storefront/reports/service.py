"""Report use cases.

A request writes the PENDING report and its ReportRequested event in one
transaction (the outbox), with its Idempotency-Key claimed in that same
transaction, so a retried request finds all three or none and never starts a
second build. The reports worker builds it (:func:`build_report`); reads add
a presigned download URL to a READY report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from storefront import idempotency
from storefront.adapters.database import UnitOfWork
from storefront.adapters.object_store import ObjectStore, ObjectStoreError
from storefront.events.envelope import Event
from storefront.events.outbox import add_events
from storefront.idempotency import IdempotencyKey
from storefront.ids import new_id
from storefront.observability import logger
from storefront.pagination import encode_cursor
from storefront.reports import builder, repository
from storefront.reports.domain import (
    DownloadUnavailable,
    Report,
    ReportNotFound,
    ReportNotReady,
    ReportPage,
    ReportQuery,
    ReportStatus,
    RequestReport,
)
from storefront.reports.events import ReportRequested
from storefront.settings import Settings


@dataclass(frozen=True)
class RequestedReport:
    report: Report
    replayed: bool = False  # answered from an earlier request with the same key


async def request_report(
    request: RequestReport,
    requested_by: str,
    engine: AsyncEngine,
    settings: Settings,
    correlation_id: str | None = None,
    idempotency_key: IdempotencyKey | None = None,
) -> RequestedReport:
    request.check_range(settings.report_max_days)
    async with UnitOfWork(engine) as uow:
        if idempotency_key is not None:
            earlier = await idempotency.claim(uow.connection, idempotency_key)
            if earlier is not None:
                return RequestedReport(Report.model_validate(earlier.body), replayed=True)
        report = Report(
            id=new_id(),
            type=request.type,
            format=request.format,
            date_from=request.date_from,
            date_to=request.date_to,
            status=ReportStatus.PENDING,
            requested_by=requested_by,
            created_at=datetime.now(UTC),
        )
        await repository.add_report(uow.connection, report)
        requested = ReportRequested(
            report_id=report.id,
            type=report.type.value,
            date_from=report.date_from,
            date_to=report.date_to,
            format=report.format.value,
        )
        event = Event.of(requested, report.id, correlation_id=correlation_id)
        await add_events(uow.connection, [event], settings.event_partitions)
        if idempotency_key is not None:
            body = report.model_dump(mode="json")
            await idempotency.remember(uow.connection, idempotency_key, 202, body)
        await uow.commit()
    return RequestedReport(report)


async def build_report(
    report_id: UUID, uow: UnitOfWork, engine: AsyncEngine, store: ObjectStore, settings: Settings
) -> Report | None:
    """The worker's use case: build a PENDING report and record READY or FAILED
    in ``uow`` (the event's transaction, with the group's position). A report already built or
    deleted is left alone: the event was delivered again."""
    report = await repository.get_report(uow.connection, report_id, for_update=True)
    if report is None or report.status is not ReportStatus.PENDING:
        return None
    try:
        built = await builder.build(report, engine, store, settings)
    except builder.BuildFailed as failure:
        logger.warning(
            "report failed", extra={"report_id": str(report_id), "reason": failure.reason}
        )
        await repository.mark_failed(uow.connection, report_id, failure.reason)
    else:
        await repository.mark_ready(
            uow.connection,
            report_id,
            object_key=built.object_key,
            content_type=built.content_type,
            size_bytes=built.size_bytes,
            row_count=built.row_count,
        )
    return await repository.get_report(uow.connection, report_id)


async def get_report(
    report_id: UUID, engine: AsyncEngine, store: ObjectStore, settings: Settings
) -> Report:
    """The report as of now; a READY one with a fresh presigned download URL."""
    async with UnitOfWork(engine) as uow:
        found = await repository.get_report(uow.connection, report_id)
    if found is None:
        raise ReportNotFound(report_id)
    now = datetime.now(UTC)
    report = found.as_of(now, timedelta(days=settings.report_retention_days))
    if report.status is not ReportStatus.READY or report.object_key is None:
        return report
    expires_in = settings.report_url_expiry_seconds
    try:
        url = await store.download_url(report.object_key, expires_in)
    except ObjectStoreError as error:
        raise DownloadUnavailable(error.reason) from error
    return report.model_copy(
        update={
            "download_url": url,
            "download_expires_at": now + timedelta(seconds=expires_in),
        }
    )


async def download_url(
    report_id: UUID, engine: AsyncEngine, store: ObjectStore, settings: Settings
) -> str:
    report = await get_report(report_id, engine, store, settings)
    if report.download_url is None:
        raise ReportNotReady(report)
    return report.download_url


async def list_reports(query: ReportQuery, engine: AsyncEngine, settings: Settings) -> ReportPage:
    async with UnitOfWork(engine) as uow:
        found = await repository.list_reports(uow.connection, query)
    now, retention = datetime.now(UTC), timedelta(days=settings.report_retention_days)
    items = [report.as_of(now, retention) for report in found[: query.limit]]
    more = len(found) > query.limit
    return ReportPage(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)


async def delete_report(report_id: UUID, engine: AsyncEngine, store: ObjectStore) -> None:
    """Forget the report, then delete its object. Should the delete fail, the
    bucket's lifecycle rule removes the object when the report expires."""
    async with UnitOfWork(engine) as uow:
        report = await repository.remove_report(uow.connection, report_id)
        if report is None:
            raise ReportNotFound(report_id)
        await uow.commit()
    if report.object_key is not None:
        try:
            await store.delete(report.object_key)
        except ObjectStoreError as error:
            logger.warning("report object not deleted", extra={"reason": error.reason})
