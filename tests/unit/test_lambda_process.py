"""Function containers: warm state, isolation, errors, crashes, timeouts, REPORT lines."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from storefront_dev.lambda_process import FunctionFleet, Invocation
from storefront_dev.templates import FunctionSpec

HANDLER = """
import os
import time

calls = 0  # module state: survives between invocations of one container


def handler(event, context):
    global calls
    calls += 1
    action = event.get("action")
    if action == "fail":
        raise ValueError("boom")
    if action == "exit":
        os._exit(3)
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "unserializable":
        return {"value": object()}
    return {
        "name": NAME,
        "calls": calls,
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "greeting": os.environ.get("GREETING"),
        "database_url": os.environ.get("DATABASE_URL"),
        "function_env": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "memory_env": os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
        "tracing": os.environ.get("POWERTOOLS_TRACE_DISABLED"),
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "arn": context.invoked_function_arn,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
"""


def function(tmp_path: Path, name: str, timeout: int = 3, source: str = HANDLER) -> FunctionSpec:
    code_dir = tmp_path / name
    code_dir.mkdir()
    (code_dir / "app.py").write_text(f"NAME = {name!r}\n{source}")
    return FunctionSpec(
        logical_id=name,
        code_dir=code_dir,
        handler_module="app",
        handler_attribute="handler",
        memory_mb=256,
        timeout_seconds=timeout,
        environment={"GREETING": f"hello from {name}"},
    )


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[FunctionFleet]:
    functions = {
        "One": function(tmp_path, "One"),
        "Two": function(tmp_path, "Two"),
        "Slow": function(tmp_path, "Slow", timeout=1),
        "Broken": function(tmp_path, "Broken", source="import not_a_module_anywhere\n"),
    }
    fleet = FunctionFleet(functions, {"DATABASE_URL": "postgresql://stack/db"})
    yield fleet
    fleet.stop()


def test_a_warm_container_keeps_module_state(fleet: FunctionFleet) -> None:
    first = fleet.invoke("One", {})
    second = fleet.invoke("One", {})
    assert (first.result["calls"], second.result["calls"]) == (1, 2)
    assert first.result["pid"] == second.result["pid"]
    assert first.result["request_id"] == first.request_id != second.request_id


def test_the_container_looks_like_lambda(fleet: FunctionFleet, tmp_path: Path) -> None:
    result = fleet.invoke("One", {}).result
    assert result["cwd"] == str(tmp_path / "One")  # the task root
    assert result["greeting"] == "hello from One"  # the template's environment
    assert result["database_url"] == "postgresql://stack/db"  # the stack's
    assert (result["function_env"], result["memory_env"]) == ("One", "256")
    assert result["tracing"] == "true"
    assert (result["function_name"], result["memory"]) == ("One", 256)
    assert result["arn"].endswith(":function:One")
    assert 0 < result["remaining_ms"] <= 3000


def test_functions_are_isolated(fleet: FunctionFleet) -> None:
    one = fleet.invoke("One", {}).result
    two = fleet.invoke("Two", {}).result
    assert (one["name"], two["name"]) == ("One", "Two")  # same module name, own code
    assert one["pid"] != two["pid"]
    assert two["calls"] == 1


def test_a_handler_exception_is_a_lambda_error_and_the_container_stays_warm(
    fleet: FunctionFleet,
) -> None:
    fleet.invoke("One", {})
    failed = fleet.invoke("One", {"action": "fail"})
    assert failed.error is not None
    assert (failed.error["errorType"], failed.error["errorMessage"]) == ("ValueError", "boom")
    assert fleet.invoke("One", {}).result["calls"] == 3


def test_an_unserializable_result_is_a_marshal_error(fleet: FunctionFleet) -> None:
    failed = fleet.invoke("One", {"action": "unserializable"})
    assert failed.error is not None
    assert failed.error["errorType"] == "Runtime.MarshalError"


def test_a_dead_container_is_replaced_by_a_cold_one(fleet: FunctionFleet) -> None:
    before = fleet.invoke("One", {}).result
    crashed = fleet.invoke("One", {"action": "exit"})
    assert crashed.error is not None
    assert crashed.error["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in crashed.error["errorMessage"]
    after = fleet.invoke("One", {}).result
    assert after["calls"] == 1
    assert after["pid"] != before["pid"]


def test_the_timeout_is_a_real_deadline(fleet: FunctionFleet) -> None:
    started = time.monotonic()
    timed_out = fleet.invoke("Slow", {"action": "sleep", "seconds": 30})
    assert time.monotonic() - started < 5
    assert timed_out.error is not None
    assert timed_out.error["errorType"] == "Sandbox.Timedout"
    assert fleet.invoke("Slow", {}).result["calls"] == 1  # killed, then a cold start


def test_an_import_error_fails_the_invocation(fleet: FunctionFleet) -> None:
    failed = fleet.invoke("Broken", {})
    assert failed.error is not None
    assert failed.error["errorType"] == "Runtime.ImportModuleError"
    assert "not_a_module_anywhere" in failed.error["errorMessage"]


def test_report_lines_carry_init_duration_on_cold_starts_only(
    fleet: FunctionFleet, capfd: pytest.CaptureFixture[str]
) -> None:
    first = fleet.invoke("One", {})
    second = fleet.invoke("One", {})
    lines = capfd.readouterr().out.splitlines()
    reports = [line for line in lines if line.startswith("REPORT RequestId:")]
    assert len(reports) == 2
    assert first.request_id in reports[0]
    assert "Init Duration:" in reports[0]
    assert "Init Duration:" not in reports[1]
    for field in ("Duration:", "Billed Duration:", "Memory Size: 256 MB", "Max Memory Used:"):
        assert field in reports[1]
    assert f"START RequestId: {second.request_id} Version: $LATEST" in lines
    assert f"END RequestId: {second.request_id}" in lines


def test_a_missing_code_directory_fails_like_an_import(tmp_path: Path) -> None:
    spec = function(tmp_path, "Missing")
    spec = dataclasses.replace(spec, code_dir=tmp_path / "not-written-yet")
    fleet = FunctionFleet({"Missing": spec}, {})
    try:
        failed = fleet.invoke("Missing", {})
    finally:
        fleet.stop()
    assert failed.error is not None
    assert failed.error["errorType"] == "Runtime.ImportModuleError"
    assert "not-written-yet" in failed.error["errorMessage"]


def test_stopping_ends_a_running_invocation_as_stopped(tmp_path: Path) -> None:
    marker = tmp_path / "running"
    source = (
        "import pathlib, time\n"
        "def handler(event, context):\n"
        f"    pathlib.Path({str(marker)!r}).touch()\n"
        "    time.sleep(60)\n"
    )
    fleet = FunctionFleet({"Looping": function(tmp_path, "Looping", timeout=90, source=source)}, {})
    results: list[Invocation] = []
    running = threading.Thread(target=lambda: results.append(fleet.invoke("Looping", {})))
    running.start()
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.exists(), "the invocation never started"
    finally:
        fleet.stop()
        running.join(timeout=30)
    assert results[0].error is not None
    assert results[0].error["errorType"] == "Runtime.Stopped"


def test_a_stopped_fleet_refuses_invocations(fleet: FunctionFleet) -> None:
    fleet.invoke("One", {})
    fleet.stop()
    refused = fleet.invoke("One", {})
    assert refused.error is not None
