"""Reports: models and rules. No web, database, S3 or cache imports here."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from storefront.errors import Conflict, DomainError, InvalidInput, NotFound


class ReportType(StrEnum):
    SALES_BY_PRODUCT = "sales_by_product"
    ORDERS_BY_STATUS = "orders_by_status"
    TOP_VIEWED = "top_viewed"


class ReportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"

    @property
    def content_type(self) -> str:
        return "text/csv; charset=utf-8" if self is ReportFormat.CSV else "application/json"


class ReportStatus(StrEnum):
    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"
    # Not stored: a READY report past its retention, whose object the
    # bucket's lifecycle rule has deleted.
    EXPIRED = "EXPIRED"


class RequestReport(BaseModel):
    """The body of ``POST /reports``; ``from`` and ``to`` are UTC days, both included."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: ReportType
    date_from: date = Field(alias="from")
    date_to: date = Field(alias="to")
    format: ReportFormat = ReportFormat.CSV

    @model_validator(mode="after")
    def _from_not_after_to(self) -> Self:
        if self.date_from > self.date_to:
            raise InvalidInput("from", f"{self.date_from} is after to ({self.date_to})")
        # Reports count days that have begun somewhere; a far future `to`
        # (9999-12-31) would also overflow the day after it, in the worker.
        latest = datetime.now(UTC).date() + timedelta(days=1)
        if self.date_to > latest:
            raise InvalidInput("to", f"{self.date_to} is in the future; {latest} at the latest")
        return self

    def check_range(self, max_days: int) -> None:
        days = (self.date_to - self.date_from).days + 1
        if days > max_days:
            raise InvalidInput(
                "to", f"the range spans {days} days; a report covers {max_days} at most"
            )


class Report(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    id: UUID
    type: ReportType
    format: ReportFormat
    date_from: date = Field(alias="from")
    date_to: date = Field(alias="to")
    status: ReportStatus
    requested_by: str
    created_at: datetime
    completed_at: datetime | None = None
    # READY: where the object is, how big, how many data rows.
    object_key: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None
    row_count: int | None = None
    # FAILED: what went wrong and what to do about it.
    reason: str | None = None
    # READY, in answers only: a presigned URL, valid until download_expires_at.
    download_url: str | None = None
    download_expires_at: datetime | None = None

    @property
    def filename(self) -> str:
        return f"{self.type}_{self.date_from}_{self.date_to}.{self.format}"

    def as_of(self, now: datetime, retention: timedelta) -> Report:
        """As callers see it at ``now``: READY turns EXPIRED once its object is gone."""
        done = self.completed_at
        if self.status is ReportStatus.READY and done is not None and now >= done + retention:
            return self.model_copy(update={"status": ReportStatus.EXPIRED})
        return self


class ReportQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: ReportStatus | None = None
    before: UUID | None = None  # newest first: the page after this id
    limit: int = 20


class ReportPage(BaseModel):
    items: list[Report]
    next_cursor: str | None


def object_key(report_id: UUID, report_format: ReportFormat) -> str:
    """One key per report: a retried build overwrites its own object, never another's."""
    return f"reports/{report_id}.{report_format}"


def utc_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start of ``first``, start of the day after ``last``) in UTC."""
    start = datetime.combine(first, time.min, tzinfo=UTC)
    return start, datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)


class ReportNotFound(NotFound):
    def __init__(self, report_id: UUID) -> None:
        super().__init__(f"report {report_id} does not exist")


class ReportNotReady(Conflict):
    def __init__(self, report: Report) -> None:
        super().__init__(f"report {report.id} is {report.status}; only a READY report downloads")


class DownloadUnavailable(DomainError):
    status = 503
    title = "Service unavailable"

    def __init__(self, reason: str) -> None:
        super().__init__(f"No download link can be made right now: {reason}.")
