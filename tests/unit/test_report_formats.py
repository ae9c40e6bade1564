"""Report encodings: whole documents from streamed batches, exact decimals."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

from storefront.reports.domain import Report, ReportFormat, ReportStatus, ReportType
from storefront.reports.formats import RowCount, encode

COLUMNS = ["day", "status", "amount"]
ROWS = [(date(2026, 3, 10), "CONFIRMED", Decimal("12.50")), (date(2026, 3, 11), "PENDING", None)]


def report(report_format: ReportFormat) -> Report:
    return Report(
        id=UUID(int=7),
        type=ReportType.ORDERS_BY_STATUS,
        format=report_format,
        date_from=date(2026, 3, 10),
        date_to=date(2026, 3, 11),
        status=ReportStatus.PENDING,
        requested_by="admin",
        created_at=datetime(2026, 3, 12, tzinfo=UTC),
    )


async def batches(
    *batches: Sequence[Sequence[object]],
) -> AsyncIterator[Sequence[Sequence[object]]]:
    for batch in batches:
        yield batch


async def encoded(
    report_format: ReportFormat, *given: Sequence[Sequence[object]]
) -> tuple[str, int]:
    count = RowCount()
    chunks = [
        chunk async for chunk in encode(report(report_format), COLUMNS, batches(*given), count)
    ]
    return b"".join(chunks).decode(), count.rows


async def test_csv_has_a_header_and_exact_values() -> None:
    body, rows = await encoded(ReportFormat.CSV, ROWS[:1], ROWS[1:])

    assert list(csv.reader(io.StringIO(body))) == [
        COLUMNS,
        ["2026-03-10", "CONFIRMED", "12.50"],
        ["2026-03-11", "PENDING", ""],
    ]
    assert rows == 2


async def test_json_is_one_document_with_the_report_and_its_rows() -> None:
    body, rows = await encoded(ReportFormat.JSON, ROWS[:1], ROWS[1:])

    document = json.loads(body)
    assert (document["report"], document["type"], document["columns"]) == (
        str(UUID(int=7)),
        "orders_by_status",
        COLUMNS,
    )
    assert document["rows"] == [
        {"day": "2026-03-10", "status": "CONFIRMED", "amount": "12.50"},
        {"day": "2026-03-11", "status": "PENDING", "amount": None},
    ]
    assert rows == 2


async def test_an_empty_report_is_still_a_valid_document() -> None:
    csv_body, _ = await encoded(ReportFormat.CSV)
    json_body, rows = await encoded(ReportFormat.JSON, [])

    assert csv_body == "day,status,amount\n"
    assert json.loads(json_body)["rows"] == []
    assert rows == 0
