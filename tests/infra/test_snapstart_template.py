"""The SnapStart parameter: what the template declares, and what a deployment creates.

SnapStart runs only on published versions, and SAM publishes them
(``AutoPublishAlias``) only where it can read the alias name before
deployment, which ``AWS::LanguageExtensions`` makes possible for an ``!If``.
So the deployment's own resources are checked too: the template is
transformed as CloudFormation would (``sam_transform.py``, with the SAM CLI's
validator) with the parameter on and off, and with a new layer.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfn_tools import load_yaml

ROOT = Path(__file__).resolve().parents[2]
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
TRANSFORM = Path(__file__).with_name("sam_transform.py")

# Cold starts are what their callers wait for; the scheduled functions run
# every minute, rarely start cold, and nobody waits for them (docs/decisions.md).
SNAPSTART_FUNCTIONS = ("CatalogApiFunction", "OrdersApiFunction", "ReportsApiFunction")
ALIAS = "live"
NO_VALUE = {"Ref": "AWS::NoValue"}


def on_when_snapstart(value: Any) -> dict[str, Any]:
    return {"Fn::If": ["SnapStartOn", value, NO_VALUE]}


@pytest.fixture(scope="module")
def template() -> Any:
    return load_yaml((ROOT / "template.yaml").read_text())


def functions(document: Any) -> dict[str, Any]:
    return {
        logical_id: resource
        for logical_id, resource in document["Resources"].items()
        if resource["Type"] in {"AWS::Serverless::Function", "AWS::Lambda::Function"}
    }


def test_the_parameter_is_off_by_default(template: Any) -> None:
    parameter = template["Parameters"]["SnapStart"]
    assert (parameter["Default"], sorted(parameter["AllowedValues"])) == (
        "false",
        ["false", "true"],
    )
    assert template["Conditions"]["SnapStartOn"] == {"Fn::Equals": [{"Ref": "SnapStart"}, "true"]}
    # Language extensions must run before SAM, to resolve the alias's !If.
    assert template["Transform"] == ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]


def test_only_the_api_functions_take_snapstart(template: Any) -> None:
    for logical_id, function in functions(template).items():
        properties = function["Properties"]
        if logical_id in SNAPSTART_FUNCTIONS:
            assert properties["SnapStart"] == on_when_snapstart({"ApplyOn": "PublishedVersions"})
            assert properties["AutoPublishAlias"] == on_when_snapstart(ALIAS)
            assert properties["VersionDeletionPolicy"] == on_when_snapstart("Delete")
            assert properties["AutoPublishAliasAllProperties"] is True
        else:
            assert not {"SnapStart", "AutoPublishAlias"} & set(properties), logical_id


def test_snapstart_functions_use_nothing_snapstart_refuses(template: Any) -> None:
    """Python 3.12 or later; no provisioned concurrency, EFS, or more than 512 MB of /tmp."""
    defaults = template["Globals"]["Function"]
    for logical_id in SNAPSTART_FUNCTIONS:
        properties = {**defaults, **template["Resources"][logical_id]["Properties"]}
        major, minor = properties["Runtime"].removeprefix("python").split(".")
        assert (int(major), int(minor)) >= (3, 12), logical_id
        assert "ProvisionedConcurrencyConfig" not in properties, logical_id
        assert "FileSystemConfigs" not in properties, logical_id
        assert properties.get("EphemeralStorage", {"Size": 512})["Size"] <= 512, logical_id


def test_a_new_layer_publishes_new_versions(template: Any) -> None:
    layers = {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::LayerVersion"
    }
    assert layers
    for logical_id, properties in layers.items():
        assert properties.get("PublishLambdaVersion") is True, logical_id


# What CloudFormation receives: the template after both transforms.

LAYER_UPLOADED_AGAIN = {"StorefrontLayer": "s3://storefront-artifacts/storefront-layer-changed"}


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The transformed template per variant: SnapStart off, on, and on with a new layer."""
    if not SAM_PYTHON.exists():
        pytest.skip(f"no SAM CLI at {SAM_PYTHON}: `make validate` installs it")
    variants = {
        "off": {"parameters": {"SnapStart": "false"}},
        "on": {"parameters": {"SnapStart": "true"}},
        "on_new_layer": {"parameters": {"SnapStart": "true"}, "content_uris": LAYER_UPLOADED_AGAIN},
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


def of_type(document: Any, kind: str) -> dict[str, Any]:
    return {key: value for key, value in document["Resources"].items() if value["Type"] == kind}


def integration_targets(document: Any) -> Iterator[str]:
    """What each HTTP API route invokes: the ${...} in its integration's URI."""
    for operations in document["Resources"]["HttpApi"]["Properties"]["Body"]["paths"].values():
        for operation in operations.values():
            uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            yield uri.split("/functions/${")[1].split("}")[0]


def alias_version(document: Any, function_id: str) -> str:
    alias = document["Resources"][f"{function_id}Alias{ALIAS}"]
    version_id: str = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
    return version_id


def test_off_deploys_no_version_and_routes_to_the_function(deployed: dict[str, Any]) -> None:
    off = deployed["off"]
    assert not of_type(off, "AWS::Lambda::Alias")
    assert not of_type(off, "AWS::Lambda::Version")
    for function_id in SNAPSTART_FUNCTIONS:
        assert "SnapStart" not in off["Resources"][function_id]["Properties"]
    assert set(integration_targets(off)) == {f"{id}.Arn" for id in SNAPSTART_FUNCTIONS}


def test_on_routes_to_a_snapstart_version_behind_the_alias(deployed: dict[str, Any]) -> None:
    """Switching the parameter on publishes a version at once (off has none),
    with SnapStart in its configuration, and the routes move to it."""
    on = deployed["on"]
    for function_id in SNAPSTART_FUNCTIONS:
        properties = on["Resources"][function_id]["Properties"]
        assert properties["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        version = on["Resources"][alias_version(on, function_id)]
        assert version["Type"] == "AWS::Lambda::Version"
        # A replaced version is deleted, or its snapshot stays billed.
        assert version["DeletionPolicy"] == "Delete"
    assert set(integration_targets(on)) == {f"{id}Alias{ALIAS}" for id in SNAPSTART_FUNCTIONS}
    # API Gateway may invoke the alias it routes to.
    for permission in of_type(on, "AWS::Lambda::Permission").values():
        target = permission["Properties"]["FunctionName"]
        if target.get("Ref", "").removesuffix(f"Alias{ALIAS}") in SNAPSTART_FUNCTIONS:
            assert target["Ref"].endswith(f"Alias{ALIAS}"), permission


def test_on_leaves_the_scheduled_functions_alone(deployed: dict[str, Any]) -> None:
    on = deployed["on"]
    scheduled = {
        schedule["Properties"]["Target"]["Arn"]["Fn::GetAtt"][0]
        for schedule in of_type(on, "AWS::Scheduler::Schedule").values()
    }
    assert scheduled, "no schedule in the transformed template"
    for function_id in scheduled:
        assert "SnapStart" not in on["Resources"][function_id]["Properties"]
        assert f"{function_id}Alias{ALIAS}" not in on["Resources"]


def test_a_new_layer_moves_the_alias_to_a_new_version(deployed: dict[str, Any]) -> None:
    before, after = deployed["on"], deployed["on_new_layer"]
    for function_id in SNAPSTART_FUNCTIONS:
        assert alias_version(after, function_id) != alias_version(before, function_id)
