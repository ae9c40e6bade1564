"""What the local stack reads from template.yaml: the real one, and edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from cfn_tools import load_yaml

from storefront_dev.templates import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT_SECONDS,
    HttpRoute,
    Schedule,
    TemplateError,
    load_template,
    parse_template,
)

ROOT = Path(__file__).resolve().parents[2]

CATALOG_ROUTES = {
    ("GET", "/health"),
    ("GET", "/health/ready"),
    ("GET", "/products"),
    ("POST", "/products"),
    ("GET", "/products/{product_id}"),
    ("PATCH", "/products/{product_id}"),
    ("DELETE", "/products/{product_id}"),
    ("GET", "/categories"),
    ("POST", "/categories"),
}


@pytest.fixture(scope="module")
def template_routes() -> list[HttpRoute]:
    return list(load_template(ROOT / "template.yaml").routes)


def test_the_catalog_routes_are_served_by_the_catalog_function(
    template_routes: list[HttpRoute],
) -> None:
    catalog = {(r.method, r.path) for r in template_routes if r.function_id == "CatalogApiFunction"}
    assert catalog >= CATALOG_ROUTES


def test_every_route_has_one_function_only(template_routes: list[HttpRoute]) -> None:
    keys = [route.route_key for route in template_routes]
    assert len(keys) == len(set(keys))


def test_every_routed_function_has_its_code_and_handler() -> None:
    template = load_template(ROOT / "template.yaml")
    for route in template.routes:
        function = template.functions[route.function_id]
        assert function.code_dir.is_dir(), function.code_dir
        assert (function.code_dir / "app.py").is_file()
        assert (function.code_dir / f"{function.handler_module}.py").is_file()
        assert function.memory_mb >= 128
        assert function.timeout_seconds >= 1


def test_the_catalog_function_gets_literal_settings_only() -> None:
    function = load_template(ROOT / "template.yaml").functions["CatalogApiFunction"]
    assert function.handler == "app.handler"
    assert function.code_dir == ROOT / "functions" / "catalog_api"
    assert function.environment["POWERTOOLS_SERVICE_NAME"] == "catalog"  # function beats Globals
    assert all(isinstance(value, str) for value in function.environment.values())
    assert "DATABASE_HOST" not in function.environment  # a !Ref only CloudFormation resolves


TEMPLATE = """
Globals:
  Function:
    MemorySize: 256
    Timeout: !Ref TimeoutParameter
    Handler: app.handler
    Environment:
      Variables:
        SHARED: from-globals
        OVERRIDDEN: from-globals
        HIDDEN_BY_REF: from-globals
        COUNT: 3
        ENABLED: true
Resources:
  Table:
    Type: AWS::DynamoDB::Table
  ProxyFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/proxy
      Handler: handlers/main.entry
      MemorySize: 1024
      Environment:
        Variables:
          OVERRIDDEN: from-function
          HIDDEN_BY_REF: !Ref Something
          SUBSTITUTED: !Sub "${AWS::Region}-x"
      Events:
        Everything:
          Type: HttpApi
          Properties: {Method: any, Path: "/{proxy+}"}
        Fallback:
          Type: HttpApi
        Nightly:
          Type: ScheduleV2
          Properties: {ScheduleExpression: rate(1 day)}
  PlainFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/plain/
"""


def test_globals_and_function_properties_merge(tmp_path: Path) -> None:
    template = parse_template(load_yaml(TEMPLATE), tmp_path)
    proxy = template.functions["ProxyFunction"]
    assert proxy.code_dir == (tmp_path / "functions" / "proxy").resolve()
    assert (proxy.handler_module, proxy.handler_attribute) == ("handlers.main", "entry")
    assert proxy.memory_mb == 1024
    assert proxy.timeout_seconds == DEFAULT_TIMEOUT_SECONDS  # a !Ref is not a number we know
    assert proxy.environment == {
        "SHARED": "from-globals",
        "OVERRIDDEN": "from-function",
        "COUNT": "3",
        "ENABLED": "true",
    }
    assert proxy.event_types == ("HttpApi", "HttpApi", "ScheduleV2")
    plain = template.functions["PlainFunction"]
    assert (plain.handler, plain.memory_mb) == ("app.handler", 256)
    assert set(template.functions) == {"ProxyFunction", "PlainFunction"}


def test_http_api_events_become_routes(tmp_path: Path) -> None:
    template = parse_template(load_yaml(TEMPLATE), tmp_path)
    assert template.routes == (
        HttpRoute("ANY", "/{proxy+}", "ProxyFunction"),
        HttpRoute("ANY", "$default", "ProxyFunction"),
    )
    assert [route.route_key for route in template.routes] == ["ANY /{proxy+}", "$default"]


def test_sam_defaults_apply_without_globals(tmp_path: Path) -> None:
    document = {
        "Resources": {
            "F": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"CodeUri": "f/", "Handler": "app.handler"},
            }
        }
    }
    function = parse_template(document, tmp_path).functions["F"]
    assert (function.memory_mb, function.timeout_seconds) == (
        DEFAULT_MEMORY_MB,
        DEFAULT_TIMEOUT_SECONDS,
    )
    assert function.environment == {}


@pytest.mark.parametrize(
    "properties",
    [
        {"CodeUri": {"Bucket": "b", "Key": "k"}, "Handler": "app.handler"},
        {"CodeUri": "f/", "Handler": "no_attribute"},
    ],
)
def test_what_cannot_run_locally_is_an_error(tmp_path: Path, properties: dict[str, object]) -> None:
    document = {"Resources": {"F": {"Type": "AWS::Serverless::Function", "Properties": properties}}}
    with pytest.raises(TemplateError, match="F"):
        parse_template(document, tmp_path)


def test_the_scheduled_functions_and_their_schedules() -> None:
    template = load_template(ROOT / "template.yaml")
    schedules = {schedule.function_id: schedule for schedule in template.schedules}
    assert {name: schedule.expression for name, schedule in schedules.items()} == {
        "OutboxRelayFunction": "rate(1 minute)",
        "InventoryWorkerFunction": "rate(1 minute)",
        "OrderWorkerFunction": "rate(1 minute)",
        "PaymentsWorkerFunction": "rate(1 minute)",
        "NotificationsWorkerFunction": "rate(1 minute)",
        "CheckoutSweepFunction": "rate(1 minute)",
        "OutboxCleanupFunction": "rate(1 hour)",
        "ReportWorkerFunction": "rate(1 minute)",
        "ViewsFlushFunction": "rate(1 minute)",
    }
    relay = schedules["OutboxRelayFunction"]
    assert (relay.name, relay.event_type, relay.group) == (
        "OutboxRelayFunctionEveryMinute",
        "ScheduleV2",
        "default",
    )
    assert all(schedule.enabled and schedule.input is None for schedule in schedules.values())
    # Each loops until its budget ends: a Timeout past the rate makes them overlap.
    assert template.functions["OutboxRelayFunction"].timeout_seconds > 60
    for worker in ("PaymentsWorkerFunction", "NotificationsWorkerFunction"):
        assert template.functions[worker].timeout_seconds == 70, worker
    # It sweeps until its budget ends too, the next invocation taking over.
    assert template.functions["CheckoutSweepFunction"].timeout_seconds == 60


def test_schedule_events_become_schedules(tmp_path: Path) -> None:
    template = parse_template(load_yaml(TEMPLATE), tmp_path)
    assert template.schedules == (Schedule("ProxyFunction", "rate(1 day)", "ProxyFunctionNightly"),)


def test_schedule_properties_are_read(tmp_path: Path) -> None:
    events = {
        "Named": {
            "Type": "ScheduleV2",
            "Properties": {
                "ScheduleExpression": "cron(0 3 * * ? *)",
                "Name": "nightly-report",
                "GroupName": "reports",
                "State": "DISABLED",
                "Input": '{"mode": "full"}',
            },
        },
        "Rule": {
            "Type": "Schedule",
            "Properties": {"Schedule": "rate(5 minutes)", "Enabled": False},
        },
    }
    properties = {"CodeUri": "f/", "Handler": "app.handler", "Events": events}
    document = {"Resources": {"F": {"Type": "AWS::Serverless::Function", "Properties": properties}}}
    assert parse_template(document, tmp_path).schedules == (
        Schedule(
            "F",
            "cron(0 3 * * ? *)",
            "nightly-report",
            "ScheduleV2",
            "reports",
            False,
            '{"mode": "full"}',
        ),
        Schedule("F", "rate(5 minutes)", "FRule", "Schedule", "default", False, None),
    )


def test_a_schedule_expression_only_cloudformation_resolves_is_an_error(tmp_path: Path) -> None:
    events = {"Tick": {"Type": "ScheduleV2", "Properties": {"ScheduleExpression": {"Ref": "Rate"}}}}
    properties = {"CodeUri": "f/", "Handler": "app.handler", "Events": events}
    document = {"Resources": {"F": {"Type": "AWS::Serverless::Function", "Properties": properties}}}
    with pytest.raises(TemplateError, match=r"F\.Tick"):
        parse_template(document, tmp_path)
