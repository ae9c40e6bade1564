"""The checkout sweep, invoked as the schedule does with its sample event: an
order past its due time expires within the invocation, which runs until its
time budget ends."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from storefront import runtime
from tests.functions.conftest import load_event, load_function
from tests.functions.test_report_and_views_handlers import ShortBudgetContext

# The 2 s margin, one sweep interval (2 s) and a little: two sweeps.
TWO_SWEEPS_SECONDS = 4.5


async def _order_due(at: datetime) -> uuid.UUID:
    order_id = uuid.uuid4()
    async with runtime.container_resources().engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO orders (id, customer_id, status, total, currency, payment_due_at)"
                " VALUES (:id, 'sweep-test', 'AWAITING_PAYMENT', 1, 'EUR', :due)"
            ),
            {"id": order_id, "due": at},
        )
    return order_id


async def _status(order_id: uuid.UUID) -> str:
    async with runtime.container_resources().engine.connect() as connection:
        status = await connection.scalar(
            text("SELECT status FROM orders WHERE id = :id"), {"id": order_id}
        )
    return str(status)


def test_the_sweep_expires_what_is_due_and_reports_what_is_overdue(
    function_environment: None,
) -> None:
    handler = load_function("checkout_sweep").handler
    now = datetime.now(UTC)
    overdue = runtime.run(_order_due(now - timedelta(minutes=5)))
    due_soon = runtime.run(_order_due(now + timedelta(milliseconds=300)))
    later = runtime.run(_order_due(now + timedelta(hours=1)))

    budget = ShortBudgetContext(deadline=time.monotonic() + TWO_SWEEPS_SECONDS)
    result = handler(load_event("checkout_sweep", "scheduled"), budget)

    # The one due during the invocation too: it sweeps until its budget ends.
    assert result == {"expired": 2, "overdue": 0}
    statuses = [runtime.run(_status(order_id)) for order_id in (overdue, due_soon, later)]
    assert statuses == ["EXPIRED", "EXPIRED", "AWAITING_PAYMENT"]
