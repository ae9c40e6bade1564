"""The README's `sam local` recipe reaches the local servers.

SAM CLI passes a variable from ``--env-vars`` to a function only when the
template declares it for that function (samcli/local/lambdafn/env_vars.py);
an undeclared one is dropped without a word, and the function falls back to
its deployed configuration.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cfn_tools import load_yaml

from storefront.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
RECIPE = re.compile(r"sam local start-api --env-vars (\S+)")


def declared_variables(template: dict[str, Any], function: dict[str, Any]) -> set[str]:
    """What the template declares for one function: Globals plus its own."""
    names: set[str] = set()
    for source in (template.get("Globals", {}).get("Function", {}), function["Properties"]):
        names |= set(source.get("Environment", {}).get("Variables", {}))
    return names


def test_the_readme_recipe_names_an_env_file_the_template_declares() -> None:
    recipes = RECIPE.findall((ROOT / "README.md").read_text())
    assert recipes, "the README shows no `sam local start-api --env-vars` recipe"
    template = load_yaml((ROOT / "template.yaml").read_text())
    functions = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    for env_file in recipes:
        given = json.loads((ROOT / env_file).read_text())["Parameters"]
        assert {"DATABASE_URL", "REDIS_URL"} <= set(given)
        for name, function in functions.items():
            dropped = set(given) - declared_variables(template, function)
            assert not dropped, f"{name}: sam local drops {sorted(dropped)} from {env_file}"


def test_the_empty_deployed_values_read_as_unset(monkeypatch: Any) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "AUTH_HS256_SECRET"):
        monkeypatch.setenv(name, "")
    settings = Settings()
    assert settings.database_url is None
    assert settings.redis_url is None
    assert settings.auth_hs256_secret is None
