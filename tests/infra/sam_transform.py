"""Transforms ``template.yaml`` as CloudFormation's SAM transform would, offline.

Run as ``.venv-sam/bin/python sam_transform.py SPEC.json`` by the SnapStart
template test: the SAM CLI's own validator (what ``sam validate`` runs) turns
the template into the CloudFormation resources a deployment creates, for each
variant of the spec. Only the SAM CLI's virtualenv has it, hence a script.

The spec: ``template`` (a path) and ``variants``, each a name with
``parameters`` (overrides) and ``content_uris`` (a layer's S3 location, as
``sam deploy`` would upload a changed layer to). The answer, on stdout: each
variant's transformed template, as JSON.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any


class NoManagedPolicies:
    """The template names no AWS managed policy, so nothing is looked up in IAM."""

    def load(self) -> dict[str, str]:
        return {}


def transform(template_path: Path, parameters: dict[str, str], content_uris: dict[str, str]) -> Any:
    yamlhelper = importlib.import_module("samcli.yamlhelper")
    validator = importlib.import_module("samcli.lib.translate.sam_template_validator")
    template = yamlhelper.yaml_parse(template_path.read_text())
    for logical_id, uri in content_uris.items():
        template["Resources"][logical_id]["Properties"]["ContentUri"] = uri
    translated = validator.SamTemplateValidator(
        template,
        NoManagedPolicies(),
        region="us-east-1",
        parameter_overrides=parameters,
        # CloudFormation runs AWS::LanguageExtensions before SAM: expand it here too.
        language_extensions_enabled=True,
    ).get_translated_template_if_valid()
    return yamlhelper.yaml_parse(translated)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    template = Path(spec["template"])
    answers = {
        name: transform(template, variant.get("parameters", {}), variant.get("content_uris", {}))
        for name, variant in spec["variants"].items()
    }
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()
