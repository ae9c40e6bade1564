"""The composition root: every function's wiring, decided in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from storefront import wiring

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def test_each_worker_runs_its_handlers_under_its_own_group_name() -> None:
    for group, handlers in wiring.WORKERS.items():
        assert handlers().for_group(group).consumer == group
        assert handlers().event_types(), f"{group} handles nothing"
    assert tuple(wiring.WORKERS) == wiring.CONSUMER_GROUPS


def test_an_unknown_group_has_no_worker() -> None:
    with pytest.raises(KeyError):
        wiring.worker("unlisted")


def test_every_route_is_served_by_exactly_one_api_function() -> None:
    apps = [wiring.catalog_app, wiring.orders_app, wiring.reports_app]
    served = [
        (method.upper(), path)
        for app in apps
        for path, operations in app(lambda: None).openapi()["paths"].items()  # type: ignore[arg-type,return-value]
        for method in operations
    ]
    assert len(served) == len(set(served))
    assert ("GET", "/admin/events") in served
    assert ("POST", "/products/{product_id}/views") in served
    assert ("PUT", "/products/{product_id}/stock") in served


def test_every_function_entrypoint_is_one_call_into_the_wiring() -> None:
    for app_py in sorted(FUNCTIONS.glob("*/app.py")):
        if app_py.parent.name == "migrate":
            continue  # a custom resource: its CloudFormation answer is its own
        tree = ast.parse(app_py.read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert "storefront.wiring" in imported, app_py
        statements = [node for node in tree.body if not isinstance(node, ast.Expr | ast.ImportFrom)]
        assert len(statements) == 1, f"{app_py}: only `handler = ...`"
