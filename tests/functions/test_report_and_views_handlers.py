"""The reports, report-worker and views-flush handlers, and the catalog's view
routes, invoked as Lambda does with their sample events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType

import pytest

from storefront import runtime
from storefront_dev.embedded import EmbeddedS3
from storefront_dev.in_process import settings_environment
from tests.functions.conftest import FakeLambdaContext, load_event, load_function


@dataclass
class ShortBudgetContext(FakeLambdaContext):
    """A budget just past the scheduled functions' 2 s margin: about half a second of work."""

    deadline: float = field(default_factory=lambda: time.monotonic() + 2.5)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@pytest.fixture(scope="module")
def s3_environment(function_environment: None, s3: EmbeddedS3) -> Iterator[None]:
    """The template's REPORTS_BUCKET, pointed at moto's server, in a fresh container."""
    wanted = s3.environment() | {"AWS_REGION": "us-east-1"}
    with settings_environment(wanted):
        # An asyncio.run() in an earlier test (a migration) leaves the thread
        # without a current loop; Mangum would then make one of its own.
        asyncio.set_event_loop(runtime.container_loop())
        runtime.run(runtime.container_resources().close())
        runtime._resources = None  # the next function's container reads the new environment
        yield
        runtime.run(runtime.container_resources().close())
        runtime._resources = None


@pytest.fixture(scope="module")
def functions(s3_environment: None) -> dict[str, ModuleType]:
    return {
        name: load_function(name)
        for name in ("reports_api", "report_worker", "views_flush", "catalog_api")
    }


def test_reports_api_sample_events(
    functions: dict[str, ModuleType], admin_headers: dict[str, str]
) -> None:
    invoke = functions["reports_api"].handler
    created = invoke(
        load_event("reports_api", "request_report", admin_headers), FakeLambdaContext()
    )
    listed = invoke(load_event("reports_api", "list_reports", admin_headers), FakeLambdaContext())
    missing = invoke(load_event("reports_api", "get_report", admin_headers), FakeLambdaContext())
    anonymous = invoke(load_event("reports_api", "list_reports"), FakeLambdaContext())

    assert created["statusCode"] == 202, created["body"]
    assert created["headers"]["location"] == f"/reports/{json.loads(created['body'])['id']}"
    assert listed["statusCode"] == 200
    assert json.loads(created["body"])["id"] in listed["body"]
    assert missing["statusCode"] == 404
    assert anonymous["statusCode"] == 401


def test_report_worker_and_views_flush_scheduled_events(
    functions: dict[str, ModuleType],
) -> None:
    worker = functions["report_worker"].handler(
        load_event("report_worker", "scheduled"), ShortBudgetContext()
    )
    flushed = functions["views_flush"].handler(
        load_event("views_flush", "scheduled"), FakeLambdaContext()
    )

    assert worker["group"] == "reports"
    assert {"handled", "lag", "pending", "dead_letters"} <= set(worker)
    assert set(flushed) == {
        "batches_applied",
        "batches_already_applied",
        "views_flushed",
        "batch_ids_forgotten",
    }


def test_catalog_view_routes_sample_events(functions: dict[str, ModuleType]) -> None:
    invoke = functions["catalog_api"].handler
    viewed = invoke(load_event("catalog_api", "record_view"), FakeLambdaContext())
    popular = invoke(load_event("catalog_api", "popular_products"), FakeLambdaContext())

    assert viewed["statusCode"] == 404  # the sample names no product that exists
    assert viewed["headers"]["content-type"] == "application/problem+json"
    assert popular["statusCode"] == 200
    assert json.loads(popular["body"])["window"] == "24h"
