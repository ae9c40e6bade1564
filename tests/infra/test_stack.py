"""The deployed stack: lint-clean templates, least-privilege IAM, logs, alarms, migrations.

Read from the templates themselves (cfn-flip understands !Ref and friends),
so a resource someone adds later is held to the same rules.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfn_tools import load_yaml
from cfnlint.api import lint_file

from storefront.migrate import head_revision

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = [ROOT / "template.yaml", *sorted((ROOT / "infra").glob("*.yaml"))]

# The only actions that may have Resource "*": AWS defines no resource for
# them (X-Ray trace segments, CloudWatch metric data). SAM's own managed
# policies (execution, VPC access, X-Ray) are not in the template.
ACTIONS_WITHOUT_RESOURCES = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "cloudwatch:PutMetricData",
}


def load(path: Path) -> Any:
    return load_yaml(path.read_text())


@pytest.fixture(scope="module")
def template() -> Any:
    return load(ROOT / "template.yaml")


def resources(document: Any, kind: str) -> dict[str, Any]:
    return {
        logical_id: resource
        for logical_id, resource in document["Resources"].items()
        if resource["Type"] == kind
    }


def canonical(node: Any) -> str:
    """A template fragment as comparable text (cfn-flip loads mappings as ODicts)."""
    return json.dumps(node, sort_keys=True)


def functions(template: Any) -> dict[str, Any]:
    return resources(template, "AWS::Serverless::Function")


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: path.name)
def test_cfn_lint_finds_nothing(path: Path) -> None:
    matches = lint_file(path)
    assert not matches, "\n".join(str(match) for match in matches)


def statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM policy statement anywhere below ``node`` (also inside !If)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Statement":
                yield from (value if isinstance(value, list) else [value])
            else:
                yield from statements(value)
    elif isinstance(node, list):
        for item in node:
            yield from statements(item)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: path.name)
def test_iam_grants_name_their_actions_and_resources(path: Path) -> None:
    grants = [
        statement
        for statement in statements(load(path)["Resources"])
        if isinstance(statement, dict) and statement.get("Effect") == "Allow"
    ]
    for statement in grants:
        assert "NotAction" not in statement, statement
        actions = as_list(statement["Action"])
        for action in actions:
            assert isinstance(action, str), f"an action is computed: {statement}"
            assert "*" not in action, f"wildcard action {action!r}: {statement}"
        if "*" in as_list(statement.get("Resource")):
            assert set(actions) <= ACTIONS_WITHOUT_RESOURCES, f"Resource '*': {statement}"


def test_functions_attach_no_aws_managed_policy_by_name(template: Any) -> None:
    # A name such as AmazonS3FullAccess grants far more than a function needs.
    for logical_id, function in functions(template).items():
        for policy in as_list(function["Properties"].get("Policies", [])):
            assert not isinstance(policy, str), f"{logical_id} attaches {policy}"


def test_every_function_logs_to_a_log_group_with_retention(template: Any) -> None:
    groups = {
        canonical(group["Properties"].get("LogGroupName")): group["Properties"]
        for group in resources(template, "AWS::Logs::LogGroup").values()
    }
    for logical_id in functions(template):
        name = canonical({"Fn::Sub": f"/aws/lambda/${{{logical_id}}}"})
        assert name in groups, f"{logical_id} has no log group {name}"
        assert groups[name]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_api_writes_access_logs_with_retention(template: Any) -> None:
    settings = template["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]
    log_group_id = settings["DestinationArn"]["Fn::GetAtt"][0]
    log_group = template["Resources"][log_group_id]
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert "$context.requestId" in settings["Format"]


def test_functions_are_traced_and_run_in_the_private_subnets(template: Any) -> None:
    settings = template["Globals"]["Function"]
    assert settings["Tracing"] == "Active"
    assert settings["VpcConfig"]["SubnetIds"] == {
        "Fn::Split": [",", {"Fn::GetAtt": ["NetworkStack", "Outputs.PrivateSubnetIds"]}]
    }
    for logical_id, function in functions(template).items():
        assert "VpcConfig" not in function["Properties"], f"{logical_id} leaves the VPC"
        assert "Tracing" not in function["Properties"], f"{logical_id} overrides tracing"


def test_the_environment_comes_from_the_nested_stacks(template: Any) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    for variable, stack_output in (
        ("DATABASE_HOST", "DatabaseStack.Outputs.ProxyEndpoint"),
        ("DATABASE_SECRET_ARN", "DatabaseStack.Outputs.SecretArn"),
        ("REDIS_HOST", "CacheStack.Outputs.Endpoint"),
        ("REDIS_PORT", "CacheStack.Outputs.Port"),
    ):
        stack, output = stack_output.split(".", 1)
        assert canonical({"Fn::GetAtt": [stack, output]}) in canonical(variables[variable])
    assert variables["DATABASE_TLS"] == "true"
    assert variables["REDIS_TLS"] == "true"
    assert variables["REDIS_CLUSTER"] == {
        "Fn::If": ["CreateCache", "true", {"Ref": "CacheClusterMode"}]
    }


def test_nested_stacks_get_exactly_the_parameters_they_declare(template: Any) -> None:
    nested = resources(template, "AWS::Serverless::Application")
    assert set(nested) == {"NetworkStack", "DatabaseStack", "CacheStack"}
    for logical_id, application in nested.items():
        child = load(ROOT / application["Properties"]["Location"])
        declared = child["Parameters"]
        given = application["Properties"].get("Parameters", {})
        assert set(given) <= set(declared), f"{logical_id}: unknown {set(given) - set(declared)}"
        required = {name for name, spec in declared.items() if "Default" not in spec}
        assert required <= set(given), f"{logical_id}: missing {required - set(given)}"


def test_postgresql_is_reached_through_rds_proxy_with_tls_and_a_managed_password() -> None:
    database = load(ROOT / "infra" / "database.yaml")
    proxy = database["Resources"]["Proxy"]["Properties"]
    assert proxy["RequireTLS"] is True
    assert proxy["EngineFamily"] == "POSTGRESQL"
    for server in ("Cluster", "Instance"):
        properties = database["Resources"][server]["Properties"]
        assert properties["ManageMasterUserPassword"] is True
        assert "MasterUserPassword" not in properties
        assert properties["StorageEncrypted"] is True


def test_the_network_needs_no_nat_for_aws_services() -> None:
    network = load(ROOT / "infra" / "network.yaml")
    endpoints = {
        endpoint["Properties"]["ServiceName"]["Fn::Sub"]: endpoint["Properties"]["VpcEndpointType"]
        for endpoint in resources(network, "AWS::EC2::VPCEndpoint").values()
    }
    assert endpoints == {
        "com.amazonaws.${AWS::Region}.s3": "Gateway",
        "com.amazonaws.${AWS::Region}.secretsmanager": "Interface",
        # SES's API (sesv2 SendEmail), not its SMTP interface (email-smtp).
        "com.amazonaws.${AWS::Region}.email": "Interface",
    }
    # The NAT gateway exists only when asked for (the internet: Stripe, a JWKS).
    assert network["Resources"]["Nat"]["Condition"] == "CreateNat"


def alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """(Namespace, MetricName, Dimensions) of a plain or a metric-math alarm."""
    properties = alarm["Properties"]
    if "MetricName" in properties:
        return [properties]
    return [
        query["MetricStat"]["Metric"] for query in properties["Metrics"] if "MetricStat" in query
    ]


def alarms_on(template: Any, namespace: str, metric_name: str) -> list[dict[str, Any]]:
    return [
        metric
        for alarm in resources(template, "AWS::CloudWatch::Alarm").values()
        for metric in alarm_metrics(alarm)
        if metric["Namespace"] == namespace and metric["MetricName"] == metric_name
    ]


def test_alarms_watch_outbox_age_dead_letters_function_errors_and_api_5xx(template: Any) -> None:
    outbox = alarms_on(template, "Storefront", "OutboxOldestUnpublishedAgeSeconds")
    assert [metric["Dimensions"] for metric in outbox] == [
        [{"Name": "service", "Value": "outbox-relay"}]
    ]
    assert alarms_on(template, "Storefront", "DeadLetterCount")

    errors = alarms_on(template, "AWS/Lambda", "Errors")
    watched = {dimension["Value"]["Ref"] for metric in errors for dimension in metric["Dimensions"]}
    assert watched == set(functions(template))

    api = alarms_on(template, "AWS/ApiGateway", "5xx")
    assert [metric["Dimensions"] for metric in api] == [
        [{"Name": "ApiId", "Value": {"Ref": "HttpApi"}}]
    ]


def test_every_alarm_notifies_the_alarm_topic(template: Any) -> None:
    notify = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    for logical_id, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        assert alarm["Properties"]["AlarmActions"] == notify, logical_id


def test_migrations_run_on_deploy_when_the_head_changes(template: Any) -> None:
    (migrations,) = resources(template, "Custom::Migrations").values()
    properties = migrations["Properties"]
    assert properties["ServiceToken"] == {"Fn::GetAtt": ["MigrateFunction", "Arn"]}
    assert properties["Head"] == {"Ref": "MigrationsHead"}
    # A new layer version (the migrations ship in it) re-runs them as well.
    assert properties["StorefrontLayer"] == {"Ref": "StorefrontLayer"}
    # The default is what a deploy of this code applies: a new migration
    # without a new default would not re-run the custom resource.
    assert template["Parameters"]["MigrationsHead"]["Default"] == head_revision()

    migrate = template["Resources"]["MigrateFunction"]["Properties"]
    assert migrate["CodeUri"] == "functions/migrate/"
    assert migrate["EventInvokeConfig"]["MaximumRetryAttempts"] == 0


def test_functions_that_must_not_run_twice_reserve_one_instance(template: Any) -> None:
    for logical_id in ("MigrateFunction", "OutboxCleanupFunction"):
        assert template["Resources"][logical_id]["Properties"]["ReservedConcurrentExecutions"] == 1


def test_outputs_name_the_endpoints(template: Any) -> None:
    assert {"ApiUrl", "DatabaseProxyEndpoint", "CacheEndpoint", "MigrationsHead"} <= set(
        template["Outputs"]
    )
