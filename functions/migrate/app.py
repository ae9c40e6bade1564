"""Migrate function: a CloudFormation custom resource that runs ``alembic upgrade head``.

CloudFormation sends Create with the stack, Update whenever a property of the
resource changes -- the template passes the migration head, the storefront
layer's version and the database host, so new migrations (or a new database)
run it again -- and Delete on teardown, where nothing happens: the data
outlives the stack.

CloudFormation waits for an answer PUT to the pre-signed ``ResponseURL`` (S3,
reached through the VPC's gateway endpoint). That is one request, so it is
``urllib.request``: crhelper would be one more package in the artifact for it,
and Powertools for Python has no custom-resource helper. A failed migration
answers FAILED with the reason, which fails (and rolls back) the deployment.
"""

from __future__ import annotations

import json
import os
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from storefront.adapters.endpoints import database_url
from storefront.migrate import head_revision, upgrade_to_head
from storefront.observability import logger
from storefront.settings import Settings

# Answer this long before Lambda's deadline: a custom resource that never
# answers holds the deployment until CloudFormation's own timeout.
ANSWER_MARGIN_MS = 10_000
# The whole answer must stay under 4 KiB.
REASON_MAX_CHARS = 1_000


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    request_type = event["RequestType"]
    physical_id = event.get("PhysicalResourceId") or f"{event['LogicalResourceId']}-migrations"
    logger.info("custom resource request", extra={"request_type": request_type})
    if request_type == "Delete":
        answer(event, "SUCCESS", physical_id, "nothing to undo: the data outlives the stack")
        return

    # Alembic's environment runs the async engine with asyncio.run, which sets
    # and then clears the current thread's event loop. On a thread of its own
    # it leaves the main thread's loop alone (this handler is synchronous and
    # runs on no loop, but storefront.runtime's container loop lives there),
    # and the main thread stays free to answer CloudFormation in time.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="migrate")
    migration = executor.submit(upgrade)
    executor.shutdown(wait=False)
    budget_seconds = max(context.get_remaining_time_in_millis() - ANSWER_MARGIN_MS, 0) / 1000
    try:
        migration.result(timeout=budget_seconds)
    except Exception as error:
        if not migration.done():
            reason = f"migration unfinished after {budget_seconds:.0f} s"
            answer(event, "FAILED", physical_id, reason)
            # End the process: PostgreSQL sees the connection close and rolls
            # the migration's transaction back, and no half-run thread lives
            # on into a later invocation of this container.
            logger.error("migration over its time budget; ending the process")
            os._exit(1)
            return
        logger.exception("migration failed")
        # The first line only: enough to act on, and no SQL or parameters.
        detail = (str(error).splitlines() or [""])[0]
        answer(event, "FAILED", physical_id, f"migration failed: {type(error).__name__}: {detail}")
        return
    head = head_revision()
    logger.info("migrated", extra={"head": head})
    answer(event, "SUCCESS", physical_id, f"database at {head}", {"Head": head or ""})


def upgrade() -> None:
    # Settings are read per invocation: CloudFormation calls this a few times
    # a year, and the URL may need the database secret, read on this thread.
    upgrade_to_head(database_url(Settings()))


def answer(
    event: dict[str, Any],
    status: str,
    physical_id: str,
    reason: str,
    data: dict[str, str] | None = None,
) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:REASON_MAX_CHARS],
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data or {},
        }
    ).encode()
    # The URL is pre-signed without a content type: sending one breaks the
    # signature. It is never logged, as it grants the write.
    request = urllib.request.Request(  # noqa: S310 (CloudFormation's https URL)
        event["ResponseURL"],
        data=body,
        method="PUT",
        headers={"Content-Type": "", "Content-Length": str(len(body))},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        logger.info("answered CloudFormation", extra={"status": status, "http": response.status})
