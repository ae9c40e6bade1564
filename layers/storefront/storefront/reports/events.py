"""Events about a report, with the report id as aggregate id."""

from __future__ import annotations

from datetime import date
from typing import ClassVar
from uuid import UUID

from storefront.events.envelope import Payload


class ReportRequested(Payload):
    """An admin asked for a report; the reports worker builds it."""

    event_type: ClassVar[str] = "ReportRequested"
    aggregate_type: ClassVar[str] = "report"
    report_id: UUID
    type: str
    date_from: date
    date_to: date
    format: str
