"""What the local stack needs from ``template.yaml``: functions, HTTP routes, schedules.

The template stays the single source of truth: the local gateway serves exactly
the routes API Gateway would, with each function's own code directory, handler,
memory, timeout and environment. Values that only CloudFormation can resolve
(``!Ref``, ``!Sub``, ...) are left out; the local stack supplies its own
endpoints instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# SAM's defaults when neither the function nor Globals set a value.
DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_SECONDS = 3

# An HttpApi event without Method and Path is the API's catch-all route.
DEFAULT_ROUTE = "$default"

# EventBridge Scheduler schedules (ScheduleV2) and EventBridge rules (Schedule).
SCHEDULE_EVENT_TYPES = ("ScheduleV2", "Schedule")


class TemplateError(ValueError):
    """The template describes something the local stack cannot run."""


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler_module: str
    handler_attribute: str
    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    environment: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    # The Type of each of its Events ("HttpApi", "ScheduleV2", ...), for whatever
    # invokes it locally: the gateway, the scheduler.
    event_types: tuple[str, ...] = ()

    @property
    def handler(self) -> str:
        return f"{self.handler_module}.{self.handler_attribute}"


@dataclass(frozen=True)
class HttpRoute:
    method: str  # upper case, or "ANY"
    path: str  # "/products/{product_id}", "/{proxy+}" or "$default"
    function_id: str

    @property
    def route_key(self) -> str:
        return DEFAULT_ROUTE if self.path == DEFAULT_ROUTE else f"{self.method} {self.path}"


@dataclass(frozen=True)
class Schedule:
    """A ScheduleV2 (EventBridge Scheduler) or Schedule (EventBridge rule) event."""

    function_id: str
    expression: str  # "rate(1 minute)", "cron(0 3 * * ? *)", as written
    # The schedule's (or rule's) Name, else what SAM calls the resource it
    # generates: the function's logical id followed by the event's.
    name: str
    event_type: str = "ScheduleV2"
    group: str = "default"  # ScheduleV2's GroupName; rules have none
    enabled: bool = True  # State: DISABLED (or Enabled: false) deploys it switched off
    # A literal Input replaces the default scheduled event as the function's event.
    input: str | None = None


@dataclass(frozen=True)
class StackTemplate:
    path: Path
    functions: Mapping[str, FunctionSpec]
    routes: tuple[HttpRoute, ...]
    schedules: tuple[Schedule, ...] = ()


def load_template(path: Path) -> StackTemplate:
    # cfn-flip understands the short intrinsic tags (!Ref, !Sub, !GetAtt) that
    # a plain YAML loader rejects; imported here so worker processes never pay for it.
    from cfn_tools import load_yaml

    document = load_yaml(path.read_text(encoding="utf-8"))
    if not isinstance(document, Mapping):
        raise TemplateError(f"{path} is not a CloudFormation template")
    return parse_template(document, path.parent, path)


def parse_template(
    document: Mapping[str, Any], base_dir: Path, path: Path | None = None
) -> StackTemplate:
    globals_ = _mapping(_mapping(document.get("Globals")).get("Function"))
    functions: dict[str, FunctionSpec] = {}
    routes: list[HttpRoute] = []
    schedules: list[Schedule] = []
    for logical_id, resource in _mapping(document.get("Resources")).items():
        resource = _mapping(resource)
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = _mapping(resource.get("Properties"))
        functions[logical_id] = _function(logical_id, properties, globals_, base_dir)
        routes.extend(_http_routes(logical_id, properties))
        schedules.extend(_schedules(logical_id, properties))
    return StackTemplate(
        path or base_dir / "template.yaml", functions, tuple(routes), tuple(schedules)
    )


def _function(
    logical_id: str, properties: Mapping[str, Any], globals_: Mapping[str, Any], base_dir: Path
) -> FunctionSpec:
    def setting(name: str) -> Any:
        return properties.get(name, globals_.get(name))

    code_uri = setting("CodeUri")
    if not isinstance(code_uri, str):
        raise TemplateError(f"{logical_id}: CodeUri must be a local directory to run it locally")
    handler = setting("Handler")
    if not isinstance(handler, str) or "." not in handler:
        raise TemplateError(f"{logical_id}: Handler must look like 'module.function'")
    module, attribute = handler.rsplit(".", 1)
    return FunctionSpec(
        logical_id=logical_id,
        code_dir=(base_dir / code_uri).resolve(),
        # Lambda accepts "dir/module.handler" and imports it as "dir.module".
        handler_module=module.replace("/", "."),
        handler_attribute=attribute,
        memory_mb=_literal_int(setting("MemorySize"), DEFAULT_MEMORY_MB),
        timeout_seconds=_literal_int(setting("Timeout"), DEFAULT_TIMEOUT_SECONDS),
        environment=_environment(globals_, properties),
        description=str(properties.get("Description", "")),
        event_types=tuple(str(event.get("Type")) for event in _events(properties)),
    )


def _environment(globals_: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, str]:
    # Merge first, filter after: a function's !Ref must hide a global literal
    # of the same name rather than let it through.
    merged: dict[str, Any] = {}
    for source in (globals_, properties):
        merged.update(_mapping(_mapping(source.get("Environment")).get("Variables")))
    literals = {name: _literal(value) for name, value in merged.items()}
    return {name: value for name, value in literals.items() if value is not None}


def _literal(value: Any) -> str | None:
    """The string CloudFormation would set for a literal; None for intrinsics."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _literal_int(value: Any, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return default


def _http_routes(logical_id: str, properties: Mapping[str, Any]) -> list[HttpRoute]:
    routes = []
    for event in _events(properties):
        if event.get("Type") != "HttpApi":
            continue
        event_properties = _mapping(event.get("Properties"))
        method = event_properties.get("Method")
        path = event_properties.get("Path")
        if method is None and path is None:
            routes.append(HttpRoute("ANY", DEFAULT_ROUTE, logical_id))
            continue
        if not isinstance(method, str) or not isinstance(path, str):
            raise TemplateError(f"{logical_id}: an HttpApi event needs literal Method and Path")
        method = method.upper()
        if method == "X-AMAZON-APIGATEWAY-ANY-METHOD":  # OpenAPI's spelling of ANY
            method = "ANY"
        routes.append(HttpRoute(method, path, logical_id))
    return routes


def _schedules(logical_id: str, properties: Mapping[str, Any]) -> list[Schedule]:
    schedules = []
    for event_id, event in _mapping(properties.get("Events")).items():
        event = _mapping(event)
        event_type = event.get("Type")
        if event_type not in SCHEDULE_EVENT_TYPES:
            continue
        event_properties = _mapping(event.get("Properties"))
        key = "ScheduleExpression" if event_type == "ScheduleV2" else "Schedule"
        expression = event_properties.get(key)
        if not isinstance(expression, str):
            raise TemplateError(f"{logical_id}.{event_id}: {key} must be a literal to run locally")
        name = _literal(event_properties.get("Name")) or f"{logical_id}{event_id}"
        group = _literal(event_properties.get("GroupName")) or "default"
        state = _literal(event_properties.get("State")) or "ENABLED"
        enabled = event_properties.get("Enabled", True) is not False and state != "DISABLED"
        schedules.append(
            Schedule(
                logical_id,
                expression.strip(),
                name,
                str(event_type),
                group,
                enabled,
                _literal(event_properties.get("Input")),
            )
        )
    return schedules


def _events(properties: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [_mapping(event) for event in _mapping(properties.get("Events")).values()]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


__all__ = [
    "DEFAULT_ROUTE",
    "SCHEDULE_EVENT_TYPES",
    "FunctionSpec",
    "HttpRoute",
    "Schedule",
    "StackTemplate",
    "TemplateError",
    "load_template",
    "parse_template",
]
