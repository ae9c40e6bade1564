"""Report routes: HTTP in, use case call, HTTP out. Every route is for admins.

The reports function is its own Lambda (``functions/reports_api``): it is the
only API function allowed to read and delete report objects in S3, and the
only one that pays for boto3 on a cold start.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import RedirectResponse

from storefront.adapters.object_store import ObjectStore
from storefront.pagination import decode_cursor
from storefront.reports import service
from storefront.reports.domain import Report, ReportPage, ReportQuery, ReportStatus, RequestReport
from storefront.web.authentication import AdminPrincipal
from storefront.web.contract import LOCATION, REPLAYED
from storefront.web.dependencies import CorrelationId, Engine, SettingsDep
from storefront.web.idempotency import IdempotencyKeyHeader, answered, idempotency_key_of
from storefront.web.problems import documented

router = APIRouter(tags=["reports"])


def object_store(request: Request, settings: SettingsDep) -> ObjectStore:
    """The object store the composition root chose (storefront.wiring)."""
    store: ObjectStore = request.app.state.object_store_for(settings)
    return store


Store = Annotated[ObjectStore, Depends(object_store)]

_NOT_FOUND = documented(_404="No such report")


@router.post(
    "/reports",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Report,
    responses=documented(_409="A request with this Idempotency-Key is still in progress")
    | {202: {"description": "Requested, or the stored answer", "headers": LOCATION | REPLAYED}},
)
async def request_report(
    request: RequestReport,
    response: Response,
    engine: Engine,
    settings: SettingsDep,
    correlation_id: CorrelationId,
    caller: AdminPrincipal,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Report:
    key = idempotency_key_of(idempotency_key, caller.subject, "POST /reports", request)
    requested = await service.request_report(
        request,
        caller.subject,
        engine,
        settings,
        correlation_id=correlation_id,
        idempotency_key=key,
    )
    answered(response, f"/reports/{requested.report.id}", requested.replayed)
    return requested.report


@router.get("/reports", response_model=ReportPage)
async def list_reports(
    engine: Engine,
    settings: SettingsDep,
    _: AdminPrincipal,
    # Every status a report can have, EXPIRED included: the enum the answers use.
    status: ReportStatus | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> ReportPage:
    query = ReportQuery(
        status=status,
        before=decode_cursor(cursor) if cursor else None,
        limit=min(limit or settings.page_size_default, settings.page_size_max),
    )
    return await service.list_reports(query, engine, settings)


@router.get("/reports/{report_id}", response_model=Report, responses=_NOT_FOUND)
async def get_report(
    report_id: UUID, engine: Engine, settings: SettingsDep, store: Store, _: AdminPrincipal
) -> Report:
    return await service.get_report(report_id, engine, store, settings)


@router.get(
    "/reports/{report_id}/download",
    status_code=status.HTTP_303_SEE_OTHER,
    response_class=RedirectResponse,
    responses=_NOT_FOUND | documented(_409="The report is not READY"),
)
async def download_report(
    report_id: UUID, engine: Engine, settings: SettingsDep, store: Store, _: AdminPrincipal
) -> RedirectResponse:
    url = await service.download_url(report_id, engine, store, settings)
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


@router.delete("/reports/{report_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_NOT_FOUND)
async def delete_report(
    report_id: UUID, engine: Engine, store: Store, _: AdminPrincipal
) -> Response:
    await service.delete_report(report_id, engine, store)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


__all__ = ["router"]
