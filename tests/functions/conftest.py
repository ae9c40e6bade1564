"""Function tests: each function's ``handler`` as Lambda calls it, with v2 events.

The module is loaded from its CodeUri folder the way the Lambda runtime does,
with configuration from environment variables only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import uuid4

import pytest

from storefront import runtime
from storefront_dev import in_process
from storefront_dev.in_process import settings_environment
from tests.conftest import TEST_AUTH

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FakeLambdaContext:
    """What the Lambda runtime passes as ``context`` (only attributes, no behaviour)."""

    function_name: str = "storefront-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:storefront-test"
    log_group_name: str = "/aws/lambda/storefront-test"
    log_stream_name: str = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def load_event(function: str, name: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A sample event; ``headers`` (a token) added to it as API Gateway passes them."""
    loaded: dict[str, Any] = json.loads((ROOT / "events" / function / f"{name}.json").read_text())
    loaded["headers"] = loaded.get("headers", {}) | {
        header.lower(): value for header, value in (headers or {}).items()
    }
    return loaded


def load_function(name: str) -> ModuleType:
    return in_process.load_function(ROOT, name)


@pytest.fixture(scope="session")
def function_environment(
    database_url: str, redis_url: str, redis_key_prefix: str
) -> Iterator[None]:
    """Configure the container the way the template's environment would."""
    wanted = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": redis_key_prefix,
        "POWERTOOLS_TRACE_DISABLED": "true",
        **TEST_AUTH.environment(),
    }
    with settings_environment(wanted):
        yield


Invoke = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture(scope="session")
def invoke_catalog(function_environment: None) -> Iterator[Invoke]:
    module = load_function("catalog_api")
    yield lambda event: module.handler(event, FakeLambdaContext())
    runtime.run(runtime.container_resources().close())
