"""The checkout's part of the stack: Stripe and SES, their secrets, permissions and alarms.

Read from template.yaml itself, like test_stack.py: who may read which
secret, what the notifications worker may send, how Stripe is reached, and
what alarms when checkout or its webhook goes wrong. The ARNs the policies
compute are checked on the template as CloudFormation would transform it
(``sam_transform.py``, as in test_snapstart_template.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cfn_tools import load_yaml

from storefront.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
NO_VALUE = {"Ref": "AWS::NoValue"}
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
TRANSFORM = Path(__file__).with_name("sam_transform.py")


@pytest.fixture(scope="module")
def template() -> Any:
    return load_yaml((ROOT / "template.yaml").read_text())


def functions_attaching(template: Any, policy: str) -> set[str]:
    """The functions whose Policies name the managed policy ``policy`` (also inside !If)."""
    attached = set()
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for entry in resource["Properties"].get("Policies", []):
            options = (
                entry["Fn::If"][1:] if isinstance(entry, dict) and "Fn::If" in entry else [entry]
            )
            if {"Ref": policy} in options:
                attached.add(logical_id)
    return attached


def variables(template: Any, function: str) -> Any:
    return template["Resources"][function]["Properties"]["Environment"]["Variables"]


@pytest.mark.parametrize(
    ("policy", "parameter", "reader"),
    [
        ("StripeSecretReadPolicy", "StripeSecretArn", "PaymentsWorkerFunction"),
        ("StripeWebhookSecretReadPolicy", "StripeWebhookSecretArn", "OrdersApiFunction"),
    ],
)
def test_each_stripe_secret_is_read_by_one_function(
    template: Any, policy: str, parameter: str, reader: str
) -> None:
    resource = template["Resources"][policy]
    assert resource["Type"] == "AWS::IAM::ManagedPolicy"
    assert resource["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": {"Ref": parameter},
        }
    ]
    condition = template["Conditions"][resource["Condition"]]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, ""]}]}
    assert functions_attaching(template, policy) == {reader}


def test_the_functions_are_told_where_their_secrets_are(template: Any) -> None:
    payments = variables(template, "PaymentsWorkerFunction")
    assert payments["STRIPE_SECRET_ARN"] == {"Ref": "StripeSecretArn"}
    assert payments["STRIPE_API_BASE"] == ""  # Stripe's own API: the SDK's default
    orders = variables(template, "OrdersApiFunction")
    assert orders["STRIPE_WEBHOOK_SECRET_ARN"] == {"Ref": "StripeWebhookSecretArn"}
    # Never the secrets themselves, not even empty: they would be in the
    # function's configuration for anyone who may read it.
    for function in ("PaymentsWorkerFunction", "OrdersApiFunction"):
        assert not {"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"} & set(
            variables(template, function)
        )


IDENTITY_ARN = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/"
CONFIGURATION_SET_ARN = (
    "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/"
)


def sub_template(resource: Any) -> str:
    """The ARN pattern of a !Sub resource, plain or with its variables."""
    value = resource["Fn::Sub"]
    return value if isinstance(value, str) else str(value[0])


def test_the_notifications_worker_sends_as_the_sender_alone(template: Any) -> None:
    policy = template["Resources"]["EmailSendPolicy"]
    assert policy["Condition"] == "HasEmailSender"
    assert functions_attaching(template, "EmailSendPolicy") == {"NotificationsWorkerFunction"}
    sender, configuration_set = policy["Properties"]["PolicyDocument"]["Statement"]

    # SES API v2 SendEmail with simple content: one action, no SendRawEmail.
    assert sender["Action"] == "ses:SendEmail"
    identities = [sub_template(resource) for resource in sender["Resource"]]
    assert identities == [f"{IDENTITY_ARN}${{EmailSender}}", f"{IDENTITY_ARN}${{Identity}}"]
    # The domain (or EmailIdentity) lends no other address of its domain.
    assert sender["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "EmailSender"}}}

    condition, statement, otherwise = configuration_set["Fn::If"]
    assert (condition, otherwise) == ("HasEmailConfigurationSet", NO_VALUE)
    assert statement["Action"] == "ses:SendEmail"
    assert sub_template(statement["Resource"]) == (
        f"{CONFIGURATION_SET_ARN}${{EmailConfigurationSet}}"
    )
    for arn in [*identities, sub_template(statement["Resource"])]:
        assert "*" not in arn, arn

    assert variables(template, "NotificationsWorkerFunction")["EMAIL_SENDER"] == {
        "Ref": "EmailSender"
    }


def test_email_parameters_take_what_the_policy_can_use(template: Any) -> None:
    """A bare address, so its domain is the part after "@" (no display name)."""
    pattern = template["Parameters"]["EmailSender"]["AllowedPattern"]
    for accepted in ("orders@shop.example.com", ""):
        assert re.fullmatch(pattern, accepted), accepted
    for refused in ("Shop <orders@shop.example.com>", "shop.example.com", "a@b@c"):
        assert not re.fullmatch(pattern, refused), refused


def test_secret_parameters_take_full_secret_arns(template: Any) -> None:
    """IAM matches the ARN create-secret prints (with its random suffix), not a name."""
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:storefront/stripe-AbCdEf"
    for parameter in ("StripeSecretArn", "StripeWebhookSecretArn"):
        pattern = template["Parameters"][parameter]["AllowedPattern"]
        assert re.fullmatch(pattern, arn)
        assert re.fullmatch(pattern, "")
        assert not re.fullmatch(pattern, "storefront/stripe")


def test_a_stripe_key_brings_the_nat_gateway_stripe_is_reached_through(template: Any) -> None:
    network = template["Resources"]["NetworkStack"]["Properties"]["Parameters"]
    assert network["NatGateway"] == {"Fn::If": ["HasStripe", "true", {"Ref": "NatGateway"}]}


def test_a_prod_stack_refuses_to_deploy_without_payments_or_emails(template: Any) -> None:
    asserted = set()
    for rule in template["Rules"].values():
        assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
        for assertion in rule["Assertions"]:
            (parameter,) = [
                operand["Ref"]
                for operand in assertion["Assert"]["Fn::Not"][0]["Fn::Equals"]
                if isinstance(operand, dict)
            ]
            asserted.add(parameter)
    assert asserted == {"StripeSecretArn", "StripeWebhookSecretArn", "EmailSender"}
    for parameter in asserted:  # optional for a dev stack
        assert template["Parameters"][parameter]["Default"] == ""


def test_the_hold_time_is_a_parameter_with_the_code_s_default(template: Any) -> None:
    parameter = template["Parameters"]["CheckoutHoldSeconds"]
    assert parameter["Default"] == Settings.model_fields["checkout_hold_seconds"].default
    assert variables(template, "OrdersApiFunction")["CHECKOUT_HOLD_SECONDS"] == {
        "Ref": "CheckoutHoldSeconds"
    }


def service_of(template: Any, function: str) -> str:
    service: str = variables(template, function)["POWERTOOLS_SERVICE_NAME"]
    return service


def alarm(template: Any, logical_id: str) -> Any:
    resource = template["Resources"][logical_id]
    assert resource["Type"] == "AWS::CloudWatch::Alarm"
    return resource["Properties"]


def test_orders_stuck_awaiting_payment_alarm(template: Any) -> None:
    """Overdue orders after a sweep, or no sweep reporting: stock stays held."""
    properties = alarm(template, "StuckAwaitingPaymentAlarm")
    assert (properties["Namespace"], properties["MetricName"]) == ("Storefront", "OrdersOverdue")
    assert properties["Dimensions"] == [
        {"Name": "service", "Value": service_of(template, "CheckoutSweepFunction")}
    ]
    assert properties["Statistic"] == "Maximum"
    assert (properties["Period"], properties["EvaluationPeriods"]) == (300, 2)
    assert properties["DatapointsToAlarm"] == 2
    assert properties["Threshold"] == 1
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert properties["TreatMissingData"] == "breaching"


@pytest.mark.parametrize(
    ("logical_id", "metric", "threshold"),
    [
        ("StripeWebhookRejectedAlarm", "StripeWebhookRejected", 5),
        ("StripeWebhookFailedAlarm", "StripeWebhookFailed", 1),
    ],
)
def test_webhook_alarms(template: Any, logical_id: str, metric: str, threshold: int) -> None:
    properties = alarm(template, logical_id)
    assert (properties["Namespace"], properties["MetricName"]) == ("Storefront", metric)
    # The webhook is a route of the orders function, which publishes these.
    assert properties["Dimensions"] == [
        {"Name": "service", "Value": service_of(template, "OrdersApiFunction")}
    ]
    assert (properties["Statistic"], properties["Period"]) == ("Sum", 300)
    assert properties["EvaluationPeriods"] == 1
    assert properties["Threshold"] == threshold
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert properties["TreatMissingData"] == "notBreaching"  # no webhook call: nothing wrong


def test_the_webhook_url_output_is_the_webhook_route(template: Any) -> None:
    events = template["Resources"]["OrdersApiFunction"]["Properties"]["Events"]
    routes = {
        (event["Properties"]["Method"], event["Properties"]["Path"])
        for event in events.values()
        if event["Type"] == "HttpApi"
    }
    assert {("POST", "/checkout"), ("POST", "/payments/stripe/webhook")} <= routes
    url = template["Outputs"]["StripeWebhookUrl"]["Value"]["Fn::Sub"]
    api_url = template["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"]
    assert url == f"{api_url}/payments/stripe/webhook"


# What CloudFormation receives for a dev stack without checkout's parameters,
# and for one with all of them.
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:storefront/{}-AbCdEf"
CONFIGURED = {
    "StripeSecretArn": SECRET.format("stripe"),
    "StripeWebhookSecretArn": SECRET.format("webhook"),
    "EmailSender": "orders@shop.example.com",
}
SES = "arn:aws:ses:us-east-1:123456789012"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not SAM_PYTHON.exists():
        pytest.skip(f"no SAM CLI at {SAM_PYTHON}: `make validate` installs it")
    variants = {
        "bare": {"parameters": {}},
        "configured": {"parameters": CONFIGURED},
        "parent_domain": {
            "parameters": CONFIGURED
            | {"EmailIdentity": "example.com", "EmailConfigurationSet": "transactional"}
        },
    }
    spec = tmp_path_factory.mktemp("sam-transform") / "spec.json"
    spec.write_text(json.dumps({"template": str(ROOT / "template.yaml"), "variants": variants}))
    transformed = subprocess.run(
        [SAM_PYTHON, TRANSFORM, spec],
        env=os.environ | {"AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert transformed.returncode == 0, transformed.stderr[-3000:]
    answer: dict[str, Any] = json.loads(transformed.stdout)
    return answer


def role_policies(document: Any, function: str) -> list[Any]:
    role = document["Resources"][f"{function}Role"]["Properties"]
    return [arn for arn in role["ManagedPolicyArns"] if isinstance(arn, dict)]


def test_without_checkout_parameters_nothing_is_granted_and_no_nat(
    deployed: dict[str, Any],
) -> None:
    bare = deployed["bare"]
    assert bare["Resources"]["NetworkStack"]["Properties"]["Parameters"]["NatGateway"] == "false"
    assert role_policies(bare, "PaymentsWorkerFunction") == [{"Ref": "DatabaseSecretReadPolicy"}]
    assert role_policies(bare, "NotificationsWorkerFunction") == [
        {"Ref": "DatabaseSecretReadPolicy"}
    ]


def test_with_them_each_function_gets_its_grant_and_stripe_its_nat(
    deployed: dict[str, Any],
) -> None:
    configured = deployed["configured"]
    network = configured["Resources"]["NetworkStack"]["Properties"]["Parameters"]
    assert network["NatGateway"] == "true"
    assert {"Ref": "StripeSecretReadPolicy"} in role_policies(configured, "PaymentsWorkerFunction")
    assert {"Ref": "StripeWebhookSecretReadPolicy"} in role_policies(
        configured, "OrdersApiFunction"
    )
    assert {"Ref": "EmailSendPolicy"} in role_policies(configured, "NotificationsWorkerFunction")


@pytest.mark.parametrize(
    ("variant", "identities", "configuration_set"),
    [
        ("configured", ["orders@shop.example.com", "shop.example.com"], None),
        ("parent_domain", ["orders@shop.example.com", "example.com"], "transactional"),
    ],
)
def test_the_email_grant_names_the_sender_s_identities(
    deployed: dict[str, Any], variant: str, identities: list[str], configuration_set: str | None
) -> None:
    policy = deployed[variant]["Resources"]["EmailSendPolicy"]["Properties"]["PolicyDocument"]
    sender, *others = policy["Statement"]
    assert sender["Resource"] == [f"{SES}:identity/{identity}" for identity in identities]
    assert sender["Condition"] == {"StringEquals": {"ses:FromAddress": "orders@shop.example.com"}}
    expected = [f"{SES}:configuration-set/{configuration_set}"] if configuration_set else []
    assert [statement["Resource"] for statement in others] == expected
