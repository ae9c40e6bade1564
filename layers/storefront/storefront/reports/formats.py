"""Rows to bytes, as they stream: CSV with a header row, or one JSON document.

Rows come in batches (one fetch from the cursor each); chunks of about
``CHUNK_BYTES`` come out while they go in, so encoding never holds more than
a batch and a chunk. Money stays exact: decimals are written as strings
(``"12.50"``), as everywhere else in the API.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from storefront.reports.domain import Report, ReportFormat

__all__ = ["CHUNK_BYTES", "RowCount", "encode"]

CHUNK_BYTES = 64 * 1024


class RowCount:
    """How many data rows went through :func:`encode` (known once it is drained)."""

    def __init__(self) -> None:
        self.rows = 0


Batches = AsyncIterable[Sequence[Sequence[object]]]


def encode(
    report: Report, columns: Sequence[str], batches: Batches, count: RowCount
) -> AsyncIterator[bytes]:
    if report.format is ReportFormat.CSV:
        return _csv(columns, batches, count)
    return _json(report, columns, batches, count)


async def _csv(columns: Sequence[str], batches: Batches, count: RowCount) -> AsyncIterator[bytes]:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    async for batch in batches:
        writer.writerows(
            [["" if value is None else _plain(value) for value in row] for row in batch]
        )
        count.rows += len(batch)
        if text.tell() >= CHUNK_BYTES:
            yield text.getvalue().encode()
            text.seek(0)
            text.truncate()
    yield text.getvalue().encode()


async def _json(
    report: Report, columns: Sequence[str], batches: Batches, count: RowCount
) -> AsyncIterator[bytes]:
    head = {
        "report": str(report.id),
        "type": report.type,
        "from": report.date_from.isoformat(),
        "to": report.date_to.isoformat(),
        "columns": list(columns),
    }
    # The document is written by hand around the rows: '{..., "rows": [' + rows + ']}'.
    parts = [json.dumps(head)[:-1] + ', "rows": [']
    size = len(parts[0])
    async for batch in batches:
        for row in batch:
            line = json.dumps(dict(zip(columns, row, strict=True)), default=_plain)
            parts.append(("\n" if count.rows == 0 else ",\n") + line)
            size += len(line) + 2
            count.rows += 1
        if size >= CHUNK_BYTES:
            yield "".join(parts).encode()
            parts, size = [], 0
    parts.append("\n]}\n")
    yield "".join(parts).encode()


def _plain(value: object) -> str:
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, int | str):
        return str(value)
    raise TypeError(f"no report encoding for {type(value).__name__}")
