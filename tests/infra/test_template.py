"""The template and the code agree: handlers exist, every route is reachable."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from cfn_tools import load_yaml
from fastapi import FastAPI
from fastapi.routing import APIRoute

from storefront import wiring
from storefront.settings import Settings
from storefront.web import documentation
from storefront_dev.routes import Router
from storefront_dev.templates import DEFAULT_ROUTE, StackTemplate, load_template

ROOT = Path(__file__).resolve().parents[2]
API_APPS = {
    "CatalogApiFunction": wiring.catalog_app,
    "OrdersApiFunction": wiring.orders_app,
    "ReportsApiFunction": wiring.reports_app,
}


@pytest.fixture(scope="module")
def template() -> StackTemplate:
    return load_template(ROOT / "template.yaml")


def test_every_handler_exists(template: StackTemplate) -> None:
    assert template.functions, "the template declares no function"
    for spec in template.functions.values():
        module = spec.code_dir / f"{spec.handler_module.replace('.', '/')}.py"
        assert module.is_file(), f"{spec.logical_id}: {module} is missing"
        tree = ast.parse(module.read_text())
        assigned = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        } | {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert spec.handler_attribute in assigned, f"{spec.logical_id}: no {spec.handler}"


def test_function_folders_are_all_in_the_template(template: StackTemplate) -> None:
    declared = {spec.code_dir.name for spec in template.functions.values()}
    on_disk = {path.name for path in (ROOT / "functions").iterdir() if path.is_dir()}
    assert on_disk - {"__pycache__"} == declared


# Served but not in the document: the document itself and its page.
UNDOCUMENTED = {
    "CatalogApiFunction": {
        (method, route.path)
        for route in documentation.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
}


def served_routes(function_id: str) -> set[tuple[str, str]]:
    """(method, path) of every operation the function's FastAPI app serves:
    those it documents, and HEAD wherever it serves GET."""
    app: FastAPI = API_APPS[function_id](lambda: None)  # type: ignore[arg-type,return-value]
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    served = documented | UNDOCUMENTED.get(function_id, set())
    return served | {("HEAD", path) for method, path in served if method == "GET"}


@pytest.mark.parametrize("function_id", sorted(API_APPS))
def test_every_fastapi_route_is_reachable_through_the_http_api(
    template: StackTemplate, function_id: str
) -> None:
    router = Router(template.routes)
    routes = served_routes(function_id)
    assert len(routes) >= 5, "the app documents fewer routes than it serves"
    for method, path in routes:
        concrete = re.sub(r"\{[^}]+\}", "0190f0e0-0000-7000-8000-000000000000", path)
        match = router.match(method, concrete)
        assert match is not None, f"{method} {path} has no HttpApi route"
        assert match.route.function_id == function_id, (
            f"{method} {path} is routed to {match.route.function_id}"
        )


def test_every_http_route_is_served_by_its_function(template: StackTemplate) -> None:
    for route in template.routes:
        if route.path == DEFAULT_ROUTE:
            continue  # the catch-all: the catalog app answers what it does not serve
        assert (route.method, route.path) in served_routes(route.function_id), (
            f"{route.route_key} is not a route of {route.function_id}'s app"
        )


def custom_resource_functions() -> set[str]:
    """Functions CloudFormation invokes for a custom resource (ServiceToken)."""
    document = load_yaml((ROOT / "template.yaml").read_text())
    return {
        resource["Properties"]["ServiceToken"]["Fn::GetAtt"][0]
        for resource in document["Resources"].values()
        if resource["Type"].startswith("Custom::")
    }


def test_every_function_without_http_routes_has_a_schedule(template: StackTemplate) -> None:
    invoked = {route.function_id for route in template.routes} | custom_resource_functions()
    for spec in template.functions.values():
        if spec.logical_id not in invoked:
            assert {"ScheduleV2", "Schedule"} & set(spec.event_types), (
                f"{spec.logical_id} has neither routes nor a schedule: nothing would invoke it"
            )


def test_functions_run_python_3_12_on_arm64() -> None:
    text = (ROOT / "template.yaml").read_text()
    assert "Runtime: python3.12" in text
    assert "Architectures: [arm64]" in text


def declared_variables(document: Any) -> dict[str, set[str]]:
    """Every environment variable the template sets, with where: Globals or a function."""
    places: dict[str, set[str]] = {}
    sources = {"Globals": document["Globals"]["Function"]} | {
        logical_id: resource["Properties"]
        for logical_id, resource in document["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    for place, properties in sources.items():
        for name in properties.get("Environment", {}).get("Variables", {}):
            places.setdefault(name, set()).add(place)
    return places


# Read by Powertools itself (or turned off by it), not by storefront's Settings.
POWERTOOLS_VARIABLES = {
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_TRACE_DISABLED",
}


def test_every_variable_the_template_sets_is_a_setting() -> None:
    """A misspelt variable is ignored without a word: the setting keeps its default."""
    read = {
        (field.alias or name).upper()
        for name, field in Settings.model_fields.items()  # pydantic reads an alias alone
    }
    document = load_yaml((ROOT / "template.yaml").read_text())
    unread = {
        name: sorted(places)
        for name, places in declared_variables(document).items()
        if name not in read | POWERTOOLS_VARIABLES
    }
    assert not unread, f"no setting reads {unread}"


# functions/<x>_worker/app.py: handler = scheduled_handler(worker("<group>"))
WORKER_CALL = re.compile(r"""\bworker\(\s*["']([^"']+)["']\s*\)""")


def consumer_groups(template: StackTemplate) -> dict[str, str]:
    """Consumer group -> the service name of the function that consumes it."""
    groups: dict[str, str] = {}
    for spec in template.functions.values():
        module = spec.code_dir / "app.py"
        for group in WORKER_CALL.findall(module.read_text()) if module.is_file() else ():
            assert group not in groups, f"two functions consume {group!r}"
            groups[group] = spec.environment["POWERTOOLS_SERVICE_NAME"]
    return groups


def test_every_consumer_group_has_its_worker_function(template: StackTemplate) -> None:
    # The relay publishes for, and cleanup waits on, wiring's groups: a group
    # without a function would hold every outbox row for ever.
    assert set(consumer_groups(template)) == set(wiring.CONSUMER_GROUPS)


def alarm_queries(document: Any, alarm: str) -> dict[str, dict[str, str]]:
    """A metric-math alarm's queries: id -> their dimensions, after checking
    that its expression reads every one of them."""
    metrics = document["Resources"][alarm]["Properties"]["Metrics"]
    (expression,) = [query["Expression"] for query in metrics if "Expression" in query]
    queries = {
        query["Id"]: {
            dimension["Name"]: dimension["Value"]
            for dimension in query["MetricStat"]["Metric"]["Dimensions"]
        }
        for query in metrics
        if "MetricStat" in query
    }
    assert set(re.findall(r"\w+", expression)) - {"MAX"} == set(queries), expression
    return queries


def test_the_alarms_watch_every_consumer_group(template: StackTemplate) -> None:
    """A stuck group, or a dead letter, alarms whichever worker reports it."""
    document = load_yaml((ROOT / "template.yaml").read_text())
    groups = consumer_groups(template)
    unsettled = alarm_queries(document, "UnsettledEventsAlarm").values()
    assert {(query["ConsumerGroup"], query["service"]) for query in unsettled} == set(
        groups.items()
    )
    dead_letters = alarm_queries(document, "DeadLettersAlarm").values()
    assert {query["service"] for query in dead_letters} == set(groups.values())


def test_a_worker_never_outlives_its_claim_on_an_entry(template: StackTemplate) -> None:
    """Pending entries idle for WORKER_CLAIM_MIN_IDLE_MS are taken over: a
    worker that may still run by then would lose its entries while live."""
    default = Settings.model_fields["worker_claim_min_idle_ms"].default
    services = set(consumer_groups(template).values())
    workers = [
        spec
        for spec in template.functions.values()
        if spec.environment.get("POWERTOOLS_SERVICE_NAME") in services
    ]
    assert len(workers) == len(services)
    for spec in workers:
        idle_ms = int(spec.environment.get("WORKER_CLAIM_MIN_IDLE_MS", default))
        assert spec.timeout_seconds * 1000 < idle_ms, spec.logical_id
