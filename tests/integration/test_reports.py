"""Reports end to end: POST -> outbox -> relay -> reports worker -> S3 (moto's server)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date

import httpx
from sqlalchemy import text

from storefront.adapters.object_store import s3_client
from storefront.resources import Resources
from storefront_dev.embedded import EmbeddedS3
from tests.integration.reports import (
    REGION,
    at,
    head_object,
    no_reports,
    reports_app,
    reports_client,
    reports_resources,
    run_worker,
    seed_orders,
)

__all__ = ["no_reports", "reports_app", "reports_client", "reports_resources"]  # fixtures

BEFORE, INSIDE, AFTER = date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 11)
RANGE = {"from": "2026-03-10", "to": "2026-03-10"}


async def rows_of(resources: Resources, sql: str) -> list[list[str]]:
    """An aggregate computed directly in SQL, every value as text."""
    start, end = at(INSIDE, 0), at(AFTER, 0)
    async with resources.engine.connect() as connection:
        found = await connection.execute(text(sql), {"start": start, "end": end})
        return [["" if value is None else str(value) for value in row] for row in found]


async def requested(client: httpx.AsyncClient, **body: str) -> str:
    response = await client.post("/reports", json=RANGE | body)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "PENDING"
    location: str = response.headers["location"]
    return location


async def ready(client: httpx.AsyncClient, location: str) -> dict[str, object]:
    report: dict[str, object] = (await client.get(location)).json()
    assert report["status"] == "READY", report
    return report


async def test_sales_by_product_csv_equals_the_sql_aggregate(
    client: httpx.AsyncClient,
    reports_client: httpx.AsyncClient,
    reports_resources: Resources,
    s3: EmbeddedS3,
) -> None:
    await seed_orders(client, reports_resources, (BEFORE, INSIDE, AFTER))
    location = await requested(reports_client, type="sales_by_product", format="csv")

    await run_worker(reports_resources)

    report = await ready(reports_client, location)
    async with httpx.AsyncClient() as anyone:  # no token: the URL is the permission
        download = await anyone.get(str(report["download_url"]))
    assert download.status_code == 200
    header, *rows = list(csv.reader(io.StringIO(download.text)))
    assert header == ["product_id", "sku", "name", "currency", "orders", "units", "revenue"]
    assert rows == await rows_of(
        reports_resources,
        """
        SELECT i.product_id, p.sku, p.name, o.currency, count(*), sum(i.quantity),
               sum(i.quantity * i.unit_price)
        FROM order_items i JOIN orders o ON o.id = i.order_id JOIN products p ON p.id = i.product_id
        WHERE o.status = 'CONFIRMED' AND o.created_at >= :start AND o.created_at < :end
        GROUP BY 1, 2, 3, 4 ORDER BY 7 DESC, 1
        """,
    )
    assert [row[1] for row in rows] == ["POT", "MUG", "TEA"]  # by revenue: 90, 36, 4.20
    head = head_object(s3, str(report["object_key"]))
    assert head["ContentLength"] == report["size_bytes"] == len(download.content)
    assert head["ContentType"] == report["content_type"] == "text/csv; charset=utf-8"
    assert report["row_count"] == 3
    assert "sales_by_product_2026-03-10_2026-03-10.csv" in head["ContentDisposition"]


async def test_orders_by_status_json_equals_the_sql_aggregate(
    client: httpx.AsyncClient, reports_client: httpx.AsyncClient, reports_resources: Resources
) -> None:
    await seed_orders(client, reports_resources, (BEFORE, INSIDE, AFTER))
    location = await requested(reports_client, type="orders_by_status", format="json")

    await run_worker(reports_resources)

    report = await ready(reports_client, location)
    async with httpx.AsyncClient() as anyone:
        document = (await anyone.get(str(report["download_url"]))).json()
    assert (document["type"], document["from"], document["to"]) == (
        "orders_by_status",
        "2026-03-10",
        "2026-03-10",
    )
    rows = [[str(row[column]) for column in document["columns"]] for row in document["rows"]]
    assert rows == await rows_of(
        reports_resources,
        """
        SELECT (created_at AT TIME ZONE 'UTC')::date, status, currency, count(*), sum(total)
        FROM orders WHERE created_at >= :start AND created_at < :end
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """,
    )
    assert len(rows) == 5  # CONFIRMED twice (EUR, USD), PENDING, REJECTED, CANCELLED
    assert report["content_type"] == "application/json"


async def test_top_viewed_reads_the_flushed_daily_counts(
    client: httpx.AsyncClient, reports_client: httpx.AsyncClient, reports_resources: Resources
) -> None:
    async with reports_resources.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO product_views_daily (day, product_id, views) VALUES"
                " ('2026-03-10', '0190f0e0-0000-7000-8000-00000000000a', 5),"
                " ('2026-03-11', '0190f0e0-0000-7000-8000-00000000000a', 4),"
                " ('2026-03-10', '0190f0e0-0000-7000-8000-00000000000b', 7),"
                " ('2026-03-12', '0190f0e0-0000-7000-8000-00000000000b', 100)"
            )
        )
    location = await requested(reports_client, type="top_viewed", format="csv", to="2026-03-11")

    await run_worker(reports_resources)

    report = await ready(reports_client, location)
    async with httpx.AsyncClient() as anyone:
        rows = list(csv.reader(io.StringIO((await anyone.get(str(report["download_url"]))).text)))
    assert rows[1:] == [
        ["0190f0e0-0000-7000-8000-00000000000a", "", "", "9"],
        ["0190f0e0-0000-7000-8000-00000000000b", "", "", "7"],
    ]


async def test_a_report_failing_in_s3_ends_failed_with_its_reason(
    reports_client: httpx.AsyncClient, reports_resources: Resources
) -> None:
    location = await requested(reports_client, type="orders_by_status")
    broken = Resources.from_settings(
        reports_resources.settings.model_copy(update={"reports_bucket": "storefront-no-such"})
    )
    try:
        await run_worker(broken)
    finally:
        await broken.close()

    report = (await reports_client.get(location)).json()
    assert report["status"] == "FAILED"
    assert report["reason"] == (
        "the reports bucket 'storefront-no-such' does not exist: check REPORTS_BUCKET"
    )
    assert report["download_url"] is None
    download = await reports_client.get(f"{location}/download")
    assert download.status_code == 409


async def test_a_retried_request_with_the_same_key_starts_one_job(
    reports_client: httpx.AsyncClient, reports_resources: Resources
) -> None:
    body = RANGE | {"type": "sales_by_product"}
    headers = {"Idempotency-Key": "monthly-sales-1"}
    first = await reports_client.post("/reports", json=body, headers=headers)
    second = await reports_client.post("/reports", json=body, headers=headers)

    assert (first.status_code, second.status_code) == (202, 202)
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    async with reports_resources.engine.connect() as connection:
        reports = await connection.scalar(text("SELECT count(*) FROM reports"))
        jobs = await connection.scalar(
            text("SELECT count(*) FROM outbox WHERE event_type = 'ReportRequested'")
        )
    assert (reports, jobs) == (1, 1)


async def test_bad_requests_are_422_naming_the_field(reports_client: httpx.AsyncClient) -> None:
    cases = {
        "from": {"type": "top_viewed", "from": "2026-03-10", "to": "2026-03-09"},
        "to": {"type": "top_viewed", "from": "2024-01-01", "to": "2026-03-09"},
        "type": {"type": "everything", "from": "2026-03-10", "to": "2026-03-10"},
        "format": {
            "type": "top_viewed",
            "format": "xlsx",
            "from": "2026-03-10",
            "to": "2026-03-10",
        },
    }
    for field, body in cases.items():
        response = await reports_client.post("/reports", json=body)
        assert response.status_code == 422, (field, response.text)
        assert response.json()["errors"][0]["field"] == field
    # The last day there is: its next day would overflow in the worker.
    far = {"type": "top_viewed", "from": "9999-12-31", "to": "9999-12-31"}
    response = await reports_client.post("/reports", json=far)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "to"


async def test_reports_are_listed_newest_first_and_deleted_with_their_object(
    reports_client: httpx.AsyncClient, reports_resources: Resources, s3: EmbeddedS3
) -> None:
    locations = [await requested(reports_client, type="top_viewed") for _ in range(3)]
    await run_worker(reports_resources)

    first = (await reports_client.get("/reports", params={"limit": 2})).json()
    rest = (await reports_client.get("/reports", params={"cursor": first["next_cursor"]})).json()
    listed = [f"/reports/{item['id']}" for item in first["items"] + rest["items"]]
    assert listed == locations[::-1]
    assert rest["next_cursor"] is None

    key = str((await ready(reports_client, locations[0]))["object_key"])
    assert (await reports_client.delete(locations[0])).status_code == 204
    assert (await reports_client.get(locations[0])).status_code == 404
    objects = s3_client(s3.url, REGION).list_objects_v2(Bucket=s3.bucket, Prefix=key)
    assert objects["KeyCount"] == 0


async def test_a_report_past_its_retention_is_expired_without_a_link(
    reports_client: httpx.AsyncClient, reports_resources: Resources
) -> None:
    location = await requested(reports_client, type="top_viewed")
    await run_worker(reports_resources)
    days = reports_resources.settings.report_retention_days
    async with reports_resources.engine.begin() as connection:
        await connection.execute(
            text("UPDATE reports SET completed_at = completed_at - make_interval(days => :days)"),
            {"days": days},
        )

    report = (await reports_client.get(location)).json()
    assert (report["status"], report["download_url"]) == ("EXPIRED", None)


async def test_reports_are_for_admins(
    reports_client: httpx.AsyncClient, customer_headers: Callable[[str], dict[str, str]]
) -> None:
    alice = customer_headers("alice")
    response = await reports_client.post(
        "/reports", json=RANGE | {"type": "top_viewed"}, headers=alice
    )
    assert response.status_code == 403
    assert (await reports_client.get("/reports", headers=alice)).status_code == 403
    assert json.loads((await reports_client.get("/reports")).text)["items"] == []


async def test_every_status_of_the_enum_can_be_listed(reports_client: httpx.AsyncClient) -> None:
    for status in ("PENDING", "READY", "FAILED", "EXPIRED"):
        response = await reports_client.get("/reports", params={"status": status})
        assert response.status_code == 200, (status, response.text)
    assert (await reports_client.get("/reports", params={"status": "LOST"})).status_code == 422
