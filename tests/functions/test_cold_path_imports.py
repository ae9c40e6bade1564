"""A function's init imports nothing it does not need before its first use.

Import time is cold-start time. Each function's
``app.py`` is imported in a fresh interpreter, as Lambda's runtime imports it
(its folder on ``sys.path``, then ``import app``), and the modules it loaded
are read back: with tracing off, neither the X-Ray SDK nor boto3 may be among
them (the reports and secrets adapters import boto3 where they use it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storefront.observability import tracing_enabled

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(path.parent.name for path in (ROOT / "functions").glob("*/app.py"))
# Top-level packages no function needs at init when tracing is off.
NOT_AT_INIT = {"aws_xray_sdk", "boto3", "s3transfer"}

_IMPORT_APP = """
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
importlib.import_module("app")
json.dump(sorted(sys.modules), sys.stdout)
"""


def loaded_at_init(function: str, environment: dict[str, str]) -> set[str]:
    """The modules a fresh interpreter holds once ``function``'s app.py is imported."""
    code_dir = ROOT / "functions" / function
    imported = subprocess.run(
        [sys.executable, "-c", _IMPORT_APP, code_dir],
        # Nothing of this session's environment: only what the case sets.
        env={"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1", **environment},
        cwd=code_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    modules: list[str] = json.loads(imported.stdout)
    return set(modules)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_init_with_tracing_off_imports_neither_the_xray_sdk_nor_boto3(function: str) -> None:
    loaded = loaded_at_init(function, {"POWERTOOLS_TRACE_DISABLED": "true"})
    assert {name.split(".")[0] for name in loaded} & NOT_AT_INIT == set()
    # Powertools imports botocore's bare package (a user-agent hook for any
    # client made later); its clients, sessions and service data stay out.
    assert sorted(name for name in loaded if name.startswith("botocore.")) == []


API_FUNCTIONS = [function for function in FUNCTIONS if function.endswith("_api")]
# The event backbone's scheduled jobs: no API function runs them.
SCHEDULED_ONLY = {
    "storefront.events.worker",
    "storefront.events.relay_loop",
    "storefront.events.consumer",
}


@pytest.mark.parametrize("function", API_FUNCTIONS)
def test_an_api_function_does_not_import_the_scheduled_jobs(function: str) -> None:
    loaded = loaded_at_init(function, {"POWERTOOLS_TRACE_DISABLED": "true"})
    assert loaded & SCHEDULED_ONLY == set()


def test_init_with_tracing_on_makes_the_tracer() -> None:
    """The other side of the switch: on Lambda, with tracing on, X-Ray is set up at init."""
    on_lambda = {"LAMBDA_TASK_ROOT": str(ROOT / "functions" / "catalog_api")}
    loaded = loaded_at_init("catalog_api", on_lambda | {"POWERTOOLS_TRACE_DISABLED": "false"})
    assert "aws_xray_sdk.core" in loaded


@pytest.mark.parametrize(
    ("environment", "enabled"),
    [
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "1"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
        ({}, False),  # not on Lambda: Powertools would not trace either
    ],
)
def test_tracing_is_on_where_powertools_would_trace(
    environment: dict[str, str], enabled: bool
) -> None:
    assert tracing_enabled(environment) is enabled
