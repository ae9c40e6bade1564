"""SnapStart's hooks, run as Lambda's runtime runs them, on real servers.

The restores are simulated with ``fork`` in a process of their own
(snapstart_container.py): its children start from a copy of everything the
parent holds, as restored containers start from a copy of the snapshot.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import snapshot_restore_py
from mangum import Mangum

from storefront import runtime, snapstart, wiring
from storefront.resources import Resources
from storefront.settings import Settings
from storefront.web.warm_up import WARM_UP_PATHS, answer_warm_up_requests
from tests.conftest import TEST_AUTH

ROOT = Path(__file__).resolve().parents[2]

Scenario = Callable[[str], dict[str, Any]]


@pytest.fixture(scope="module")
def container(
    database_url: str,
    redis_url: str,
    redis_key_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Scenario:
    """Runs a scenario of snapstart_container.py with the catalog function's environment."""
    environment = os.environ | {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": redis_key_prefix,
        "POWERTOOLS_TRACE_DISABLED": "true",
        # As deployed, where a secret holds the database's credentials (the
        # URL wins here, so it is never read): boto3 is imported before the snapshot.
        "DATABASE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:storefront",
        **TEST_AUTH.environment(),
    }

    @cache  # a scenario's run answers every test that asks about it
    def run(scenario: str) -> dict[str, Any]:
        result = tmp_path_factory.mktemp("snapstart") / "result.json"
        finished = subprocess.run(
            [sys.executable, "-m", "tests.functions.snapstart_container", scenario, result],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert finished.returncode == 0, finished.stderr[-4000:]
        answer: dict[str, Any] = json.loads(result.read_text())
        for child in answer["children"]:
            assert child["exit_code"] == 0, child.get("error")
        return answer

    return run


def test_the_hooks_register_once() -> None:
    """storefront.wiring, imported above as every function imports it at init,
    registered them; registering again adds nothing. (snapstart_container.py
    runs whatever a function's import registered.)"""
    assert snapstart.register_runtime_hooks()
    before = [hook for hook, _, _ in snapshot_restore_py.get_before_snapshot()]
    after = [hook for hook, _, _ in snapshot_restore_py.get_after_restore()]
    assert before.count(snapstart.before_snapshot) == 1
    assert after.count(snapstart.after_restore) == 1


def test_the_warm_up_needs_no_server() -> None:
    """Warm-up requests on apps whose servers do not exist: nothing tries to reach them."""
    unreachable = Resources.from_settings(
        Settings(
            database_url="postgresql://storefront@127.0.0.1:9/nowhere",
            redis_url="redis://127.0.0.1:9/0",
            **TEST_AUTH.settings(),
        )
    )
    runtime.container_loop()  # Mangum runs the requests on the current loop
    catalog = Mangum(wiring.catalog_app(lambda: unreachable), lifespan="off")
    orders = Mangum(wiring.orders_app(lambda: unreachable), lifespan="off")

    # The catalog answers both; the others warm their 404 problem instead.
    assert answer_warm_up_requests(catalog) == [200] * len(WARM_UP_PATHS)
    assert answer_warm_up_requests(orders) == [404] * len(WARM_UP_PATHS)


def test_before_the_snapshot_no_connection_is_left_and_the_app_is_warm(
    container: Scenario,
) -> None:
    parent = container("restore")["parent"]

    sockets = parent["sockets"]
    assert sockets["with_connections"] > sockets["after_init"]  # init's PostgreSQL and Redis
    assert sockets["at_snapshot"] == sockets["after_init"]
    # The app was warmed: the API document, read lazily, is in memory, and
    # boto3, which the first secret read would import, is imported.
    assert parent["document_loaded_before_snapshot_hooks"] == 0
    assert parent["document_loaded_at_snapshot"] == 1
    assert not parent["boto3_before_snapshot_hooks"]
    assert parent["boto3_at_snapshot"]


def test_restored_containers_have_their_own_connections_and_randomness(
    container: Scenario,
) -> None:
    answer = container("restore")
    parent = answer["parent"]
    first, second = answer["children"]

    assert first["status"] == second["status"] == 200
    backends = {parent["backend_pid"], first["backend_pid"], second["backend_pid"]}
    clients = {parent["client_id"], first["client_id"], second["client_id"]}
    assert len(backends) == len(clients) == 3
    for drawn in ("random", "ids", "event_ids"):
        assert not set(first[drawn]) & set(second[drawn]), drawn


def test_without_the_after_restore_hook_restored_containers_draw_the_same_numbers(
    container: Scenario,
) -> None:
    """The guard matters: Python's random state is in the snapshot."""
    first, second = container("restore_without_hook")["children"]

    assert first["random"] == second["random"]
    # ids come from the kernel's random source, hook or not.
    assert not set(first["ids"]) & set(second["ids"])
    assert not set(first["event_ids"]) & set(second["event_ids"])


def test_after_restore_connections_in_the_snapshot_are_not_reused(container: Scenario) -> None:
    """Even when a snapshot holds connections (taken without the before-snapshot
    hook), a restored container opens its own; without the after-restore hook
    it would use the snapshot's, which every other restored container shares."""
    answer = container("snapshot_holding_connections")
    parent = answer["parent"]
    without_hook, with_hook = answer["children"]

    assert parent["sockets"]["at_snapshot"] == parent["sockets"]["with_connections"]
    assert without_hook["after_restore"] is False
    assert (without_hook["backend_pid"], without_hook["client_id"]) == (
        parent["backend_pid"],
        parent["client_id"],
    )
    assert with_hook["status"] == 200
    assert with_hook["backend_pid"] != parent["backend_pid"]
    assert with_hook["client_id"] != parent["client_id"]
