"""The HTTP API's one OpenAPI document: what every operation needs, answers and sends.

Each API function's app describes its own routes; :func:`complete` adds what
they share so a generated client needs no hand edits: one ``Problem``
component for every error answer, the bearer scheme and each operation's
security (an admin-only operation says so), and every response header the
middleware and routes send, and the answers API Gateway gives by itself
(``GatewayError``). :func:`merge` joins the functions' documents into the
single document the API serves at ``/openapi.json``
(:func:`storefront.wiring.api_document`) and adds the :data:`LINKS` between
operations, which may cross functions.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from storefront.web.problems import PROBLEM_JSON, PROBLEM_SCHEMA

__all__ = [
    "ADMIN_ONLY",
    "A_TOKEN",
    "CONDITIONAL_READ",
    "LINKS",
    "LOCATION",
    "NEEDS",
    "REPLAYED",
    "UNMETERED",
    "complete",
    "header",
    "link_errors",
    "merge",
]

TITLE = "Storefront API"
VERSION = "0.1.0"
BEARER = "bearer"

# How a route marks what it needs (``openapi_extra``), read by :func:`complete`.
NEEDS = "x-storefront-needs"
ADMIN_ONLY = "admin"
A_TOKEN = "token"  # noqa: S105  (a marker, not a secret)
# A route served without the rate limit (create_api's ``unmetered``): no
# RateLimit-* headers, no 429, and no use for a token.
UNMETERED = "x-storefront-unmetered"


def header(description: str, schema_type: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": schema_type}}


LOCATION = {"Location": header("Where the created resource (or the download) is")}
REPLAYED = {
    "Idempotent-Replayed": header(
        "true when this is the stored answer to an earlier request with the same Idempotency-Key"
    )
}
_CORRELATION = {"X-Correlation-Id": header("The request's id, in every log line it caused")}
_RATE_LIMIT = {
    "RateLimit-Limit": header("Requests allowed in the window", "integer"),
    "RateLimit-Remaining": header("Requests left in the window", "integer"),
    "RateLimit-Reset": header("Seconds until the window ends", "integer"),
}
_RETRY_AFTER = {"Retry-After": header("Seconds to wait before trying again", "integer")}
_CACHE = {
    "ETag": header("The body's entity tag, for If-None-Match"),
    "Cache-Control": header("How long the body may be used before revalidating"),
    "X-Cache": header("HIT, MISS or BYPASS: whether the server's cache answered"),
}

# A cached read: If-None-Match in, 304 out (openapi_extra of the route).
CONDITIONAL_READ: dict[str, Any] = {
    "parameters": [
        {
            "name": "If-None-Match",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "ETags the client holds; a match answers 304 with no body",
        }
    ],
    "responses": {
        "304": {"description": "Not modified: the client's copy is current", "headers": _CACHE},
    },
    "x-storefront-cached": True,
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_GATEWAY_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
    "description": "An answer of API Gateway itself, not of the API's code, such as "
    '{"message": "Internal Server Error"}. An HTTP API cannot reshape these bodies.',
}
# What API Gateway (HTTP API, Lambda proxy integration) answers by itself on
# any route, whatever the function would have said (the Lambda developer
# guide's "Handling Lambda errors with an API Gateway API").
_GATEWAY_ANSWERS = {
    "413": "the body is over the gateway's or Lambda's payload limit "
    '({"message": "Request Entity Too Large"})',
    "429": 'the stage\'s throttling ({"message": "Too Many Requests"})',
    "500": 'Lambda refused the invocation, e.g. throttled ({"message": "Internal Server Error"})',
    "502": "the function failed, timed out, ran out of memory or could not start "
    '({"message": "Internal Server Error"})',
    "503": 'the integration timed out ({"message": "Service Unavailable"})',
}
# Where both our problem and the gateway's body may come, each media type
# declares either: openapi-python-client (0.29) reads one media type per
# status, the first, and its client must parse both bodies.
_EITHER = "ProblemOrGatewayError"
_EITHER_SCHEMA: dict[str, Any] = {
    "anyOf": [_ref("Problem"), _ref("GatewayError")],
    "description": "A Problem from the API, or API Gateway's own answer (GatewayError)",
}


def complete(document: dict[str, Any], *, metered: bool = True) -> dict[str, Any]:
    """``document`` (one app's OpenAPI) with the shared components, security and headers."""
    document = copy.deepcopy(document)
    document["openapi"] = "3.1.0"
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["GatewayError"] = _GATEWAY_ERROR_SCHEMA
    schemas[_EITHER] = _EITHER_SCHEMA
    components["securitySchemes"] = {
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token of the configured issuer (Cognito, or any "
            "OIDC issuer's JWKS; HS256 locally). Admin operations need the admin role: "
            "the configured claim (cognito:groups) holding the admin value.",
        }
    }
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            _complete_operation(operation, metered=metered and not path.startswith("/health"))
    return document


def _complete_operation(operation: dict[str, Any], *, metered: bool) -> None:
    unmetered = operation.pop(UNMETERED, False)
    _secure(operation, operation.pop(NEEDS, None), takes_token=not unmetered)
    if unmetered:
        metered = False
        operation.get("responses", {}).pop("429", None)
    for parameter in operation.get("parameters", []):
        _no_null_header(parameter)
    cached = operation.pop("x-storefront-cached", False)
    for status, response in operation.get("responses", {}).items():
        headers = response.setdefault("headers", {})
        headers.update(_CORRELATION)
        if metered:
            headers.update(_RATE_LIMIT)
        if status in ("429", "503"):
            headers.update(_RETRY_AFTER)
        if status == "303":
            headers.update(LOCATION)
        if cached and status == "200":
            headers.update(_CACHE)
        for content in response.get("content", {}).values():
            if content.get("schema") == PROBLEM_SCHEMA:
                content["schema"] = _ref("Problem")
    _declare_gateway_answers(operation.setdefault("responses", {}))


def _declare_gateway_answers(responses: dict[str, Any]) -> None:
    for status, cause in _GATEWAY_ANSWERS.items():
        said = f"API Gateway's own answer: {cause}"
        if status not in responses:
            # Only the gateway answers it here: none of our headers come with it.
            responses[status] = {
                "description": said,
                "content": {"application/json": {"schema": _ref("GatewayError")}},
            }
            continue
        response = responses[status]
        content = response.setdefault("content", {})
        if PROBLEM_JSON in content:
            content[PROBLEM_JSON]["schema"] = _ref(_EITHER)
            content["application/json"] = {"schema": _ref(_EITHER)}
        else:
            content["application/json"] = {"schema": _ref("GatewayError")}
        response["description"] = f"{response['description']}; or {said}"


def _secure(operation: dict[str, Any], needs: str | None, *, takes_token: bool = True) -> None:
    if needs in (ADMIN_ONLY, A_TOKEN):
        operation["security"] = [{BEARER: []}]
    elif not takes_token:
        operation["security"] = []
    else:
        # A token is optional: the caller's own rate limit, not access.
        operation["security"] = [{}, {BEARER: []}]
    if needs == ADMIN_ONLY:
        operation["description"] = (
            operation.get("description", "") + "\n\nRequires the admin role."
        ).strip()


def _no_null_header(parameter: dict[str, Any]) -> None:
    """HTTP has no null header: an optional header is one left out, so a
    generated client must not offer to send None (FastAPI's ``str | None``
    says anyOf [string, null])."""
    variants = parameter.get("schema", {}).get("anyOf", [])
    if parameter.get("in") != "header" or {"type": "null"} not in variants:
        return
    kept = [variant for variant in variants if variant != {"type": "null"}]
    schema = {key: value for key, value in parameter["schema"].items() if key != "anyOf"}
    parameter["schema"] = schema | (kept[0] if len(kept) == 1 else {"anyOf": kept})


# Where an answer leads (OpenAPI links), for clients and Schemathesis'
# stateful pass: answering operation and status -> link name -> target, which
# takes the answer's ``id`` as its one path parameter. Targets are named as the
# template routes them; :func:`merge` writes the operationId FastAPI derived
# for each, so renaming a route's function cannot leave a link dangling.
LINKS: dict[tuple[str, str], dict[str, str]] = {
    ("POST /products", "201"): {
        "GetProduct": "GET /products/{product_id}",
        "UpdateProduct": "PATCH /products/{product_id}",
        "DeleteProduct": "DELETE /products/{product_id}",
        "GetStock": "GET /products/{product_id}/stock",
        "SetStock": "PUT /products/{product_id}/stock",
        "RecordView": "POST /products/{product_id}/views",
        "AddToCart": "PUT /cart/items/{product_id}",
    },
    ("POST /categories", "201"): {"GetCategory": "GET /categories/{category_id}"},
    ("POST /orders", "201"): {
        "GetOrder": "GET /orders/{order_id}",
        "CancelOrder": "POST /orders/{order_id}/cancel",
    },
    ("POST /checkout", "201"): {
        "GetOrder": "GET /orders/{order_id}",
        "CancelOrder": "POST /orders/{order_id}/cancel",
    },
    ("POST /reports", "202"): {
        "GetReport": "GET /reports/{report_id}",
        "DownloadReport": "GET /reports/{report_id}/download",
        "DeleteReport": "DELETE /reports/{report_id}",
    },
}
_ANSWERED_ID = "$response.body#/id"


def merge(
    documents: Iterable[dict[str, Any]],
    links: dict[tuple[str, str], dict[str, str]] = LINKS,
) -> dict[str, Any]:
    """One document from the functions' own: their paths and components
    joined, and ``links`` between their operations.

    A path served by two functions, or one component name with two different
    schemas, is an error: API Gateway routes a path to one function, and a
    generated client gets one class per name. So is a link that does not
    lead where it says (:func:`link_errors`).
    """
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {}},
    }
    for document in documents:
        for path, operations in document.get("paths", {}).items():
            mine = merged["paths"].setdefault(path, {})
            for method, operation in operations.items():
                if method in mine:
                    raise ValueError(f"{method.upper()} {path} is served by two functions")
                # A copy: the links below must not reach the function's own document.
                mine[method] = copy.deepcopy(operation)
        for kind, entries in document.get("components", {}).items():
            known = merged["components"].setdefault(kind, {})
            for name, schema in entries.items():
                if known.setdefault(name, schema) != schema:
                    raise ValueError(f"components.{kind}.{name} differs between functions")
    _add_links(merged, links)
    errors = link_errors(merged)
    if errors:
        raise ValueError("broken links: " + "; ".join(errors))
    return merged


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


def _add_links(document: dict[str, Any], links: dict[tuple[str, str], dict[str, str]]) -> None:
    operations = _operations(document)
    for (source, status), targets in links.items():
        response = operations.get(source, {}).get("responses", {}).get(status)
        if response is None:
            raise ValueError(f"a link from {source} {status}, which the document does not have")
        for name, target in targets.items():
            if target not in operations:
                raise ValueError(f"link {name} of {source} {status} leads to no {target}")
            response.setdefault("links", {})[name] = {
                "operationId": operations[target].get("operationId"),
                "parameters": {parameter: _ANSWERED_ID for parameter in _path_names(target)},
            }


def _path_names(label: str) -> list[str]:
    return re.findall(r"\{([^}]+)\}", label)


def link_errors(document: dict[str, Any]) -> list[str]:
    """What is wrong with ``document``'s links: a target no operationId
    names, parameters other than exactly the target's path parameters, a
    ``$response.body#/...`` field the answer's schema does not require."""
    operations = _operations(document)
    by_id = {operation.get("operationId"): label for label, operation in operations.items()}
    errors = []
    for source, operation in operations.items():
        for status, response in operation.get("responses", {}).items():
            for name, link in response.get("links", {}).items():
                where = f"{source} {status} link {name}"
                target = by_id.get(link.get("operationId"))
                if target is None:
                    errors.append(f"{where}: no operation {link.get('operationId')!r}")
                    continue
                parameters = link.get("parameters", {})
                wanted = {
                    parameter["name"]
                    for parameter in operations[target].get("parameters", [])
                    if parameter["in"] == "path"
                }
                if set(parameters) != wanted:
                    errors.append(f"{where}: {sorted(parameters)}, not {target}'s {sorted(wanted)}")
                for expression in parameters.values():
                    field = str(expression).removeprefix("$response.body#/")
                    if field != expression and field not in _required(document, response):
                        errors.append(f"{where}: the answer need not have {field!r}")
    return errors


def _required(document: dict[str, Any], response: dict[str, Any]) -> set[str]:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    reference = schema.get("$ref", "")
    if reference.startswith("#/components/schemas/"):
        schema = document["components"]["schemas"].get(reference.rsplit("/", 1)[1], {})
    return set(schema.get("required", []))
