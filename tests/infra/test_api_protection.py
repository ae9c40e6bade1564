"""The HTTP API's throttling and CORS in template.yaml agree with the functions'."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfn_tools import load_yaml

from storefront.web.hardening import CORS_ALLOW_HEADERS, CORS_ALLOW_METHODS, CORS_EXPOSE_HEADERS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> Any:
    return load_yaml((ROOT / "template.yaml").read_text())


def test_default_route_throttling_comes_from_parameters(template: Any) -> None:
    settings = template["Resources"]["HttpApi"]["Properties"]["DefaultRouteSettings"]
    assert settings == {
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
    }
    for name in settings:
        assert template["Parameters"][name]["Type"] == "Number"


def test_api_gateway_and_the_functions_share_one_cors_allow_list(template: Any) -> None:
    condition, cors, otherwise = template["Resources"]["HttpApi"]["Properties"][
        "CorsConfiguration"
    ]["Fn::If"]

    assert condition == "HasCorsOrigins"
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert cors["AllowOrigins"] == {"Fn::Split": [",", {"Ref": "CorsAllowOrigins"}]}
    assert tuple(cors["AllowMethods"]) == CORS_ALLOW_METHODS
    assert tuple(cors["AllowHeaders"]) == CORS_ALLOW_HEADERS
    assert tuple(cors["ExposeHeaders"]) == CORS_EXPOSE_HEADERS
    assert "AllowCredentials" not in cors
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["CORS_ALLOW_ORIGINS"] == {"Ref": "CorsAllowOrigins"}
