"""The read endpoint as deployed: an Aurora reader and the RDS Proxy's read-only
endpoint over it when DatabaseReaderInstances asks for one, and the host the
functions send lag-tolerant reads to (DATABASE_READ_HOST) in every case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfn_tools import load_yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def database() -> Any:
    return load_yaml((ROOT / "infra" / "database.yaml").read_text())


@pytest.fixture(scope="module")
def template() -> Any:
    return load_yaml((ROOT / "template.yaml").read_text())


def test_a_reader_is_asked_for_and_aurora_only(database: Any, template: Any) -> None:
    assert template["Parameters"]["DatabaseReaderInstances"]["Default"] == "0"
    passed = template["Resources"]["DatabaseStack"]["Properties"]["Parameters"]
    assert passed["ReaderInstances"] == {"Ref": "DatabaseReaderInstances"}
    assert database["Conditions"]["HasReader"] == {
        "Fn::And": [{"Condition": "IsAurora"}, {"Fn::Equals": [{"Ref": "ReaderInstances"}, "1"]}]
    }


def test_the_reader_joins_the_cluster_after_its_writer(database: Any) -> None:
    reader = database["Resources"]["ClusterReader"]
    assert reader["Condition"] == "HasReader"
    assert reader["Properties"]["DBClusterIdentifier"] == {"Ref": "Cluster"}
    # Aurora makes whichever instance it creates first the writer.
    assert reader["DependsOn"] == "ClusterWriter"


def test_the_proxy_has_a_read_only_endpoint_only_with_a_reader(database: Any) -> None:
    endpoint = database["Resources"]["ProxyReadEndpoint"]
    assert endpoint["Type"] == "AWS::RDS::DBProxyEndpoint"
    assert endpoint["Condition"] == "HasReader"
    assert endpoint["Properties"]["TargetRole"] == "READ_ONLY"
    assert endpoint["Properties"]["DBProxyName"] == {"Ref": "Proxy"}
    assert endpoint["Properties"]["VpcSecurityGroupIds"] == [{"Ref": "ProxySecurityGroupId"}]


def test_without_a_reader_the_read_endpoint_is_the_writers(database: Any) -> None:
    """A read-only endpoint without a reader has no target; the functions take
    the writer's host as the read host to mean "no reader" (one engine)."""
    assert database["Outputs"]["ReadEndpoint"]["Value"] == {
        "Fn::If": [
            "HasReader",
            {"Fn::GetAtt": ["ProxyReadEndpoint", "Endpoint"]},
            {"Fn::GetAtt": ["Proxy", "Endpoint"]},
        ]
    }


def test_every_function_gets_the_read_host(template: Any) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["DATABASE_READ_HOST"] == {
        "Fn::If": [
            "CreateDatabase",
            {"Fn::GetAtt": ["DatabaseStack", "Outputs.ReadEndpoint"]},
            {"Ref": "DatabaseReadEndpoint"},
        ]
    }
    assert template["Parameters"]["DatabaseReadEndpoint"]["Default"] == ""
