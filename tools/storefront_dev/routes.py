"""API Gateway HTTP API behaviour: route selection and payload format 2.0.

Route selection follows API Gateway's rules: a full match beats a greedy
``{proxy+}`` match, which beats ``$default``; at each path segment a literal
beats a ``{parameter}``; a route's own method beats ``ANY``.

Events and responses follow the Lambda proxy payload format 2.0 (the one the
catalog's Mangum handler reads), so a function sees locally what it will see
behind the real API Gateway.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from storefront_dev.templates import DEFAULT_ROUTE, HttpRoute

_LITERAL, _PARAMETER, _GREEDY = 2, 1, 0

# Content types API Gateway passes as text; any other body arrives base64-encoded.
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
_TEXT_SUFFIXES = ("+json", "+xml")
_FORM = "application/x-www-form-urlencoded"

# The gateway computes these itself; a function's values would be wrong or harmful.
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class RouteMatch:
    route: HttpRoute
    path_parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Pattern:
    route: HttpRoute
    segments: tuple[tuple[int, str], ...]  # (kind, literal text or parameter name)

    @classmethod
    def compile(cls, route: HttpRoute) -> _Pattern:
        segments = []
        parts = route.path[1:].split("/")
        for index, part in enumerate(parts):
            if part.startswith("{") and part.endswith("+}"):
                if index != len(parts) - 1:
                    raise ValueError(f"{route.path}: a greedy {{name+}} must be the last segment")
                segments.append((_GREEDY, part[1:-2]))
            elif part.startswith("{") and part.endswith("}"):
                segments.append((_PARAMETER, part[1:-1]))
            else:
                segments.append((_LITERAL, part))
        return cls(route, tuple(segments))

    def match(self, parts: Sequence[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
        """Per-segment ranks (for specificity) and path parameters, or None."""
        parameters: dict[str, str] = {}
        ranks: list[int] = []
        for index, (kind, text) in enumerate(self.segments):
            if kind == _GREEDY:
                rest = parts[index:]
                if not rest or not any(rest):
                    return None
                parameters[text] = "/".join(rest)
                ranks.append(kind)
                return tuple(ranks), parameters
            if index >= len(parts):
                return None
            if kind == _LITERAL and parts[index] != text:
                return None
            if kind == _PARAMETER:
                if not parts[index]:
                    return None
                parameters[text] = parts[index]
            ranks.append(kind)
        if len(parts) != len(self.segments):
            return None
        return tuple(ranks), parameters

    @property
    def greedy(self) -> bool:
        return bool(self.segments) and self.segments[-1][0] == _GREEDY


class Router:
    def __init__(self, routes: Iterable[HttpRoute]) -> None:
        self.routes = tuple(routes)
        self._patterns = [_Pattern.compile(r) for r in self.routes if r.path != DEFAULT_ROUTE]
        self._default = next((r for r in self.routes if r.path == DEFAULT_ROUTE), None)

    def match(self, method: str, raw_path: str) -> RouteMatch | None:
        method = method.upper()
        # Split before decoding, so an encoded "/" stays inside its segment.
        parts = [unquote(part) for part in raw_path[1:].split("/")]
        best: tuple[Any, ...] | None = None
        found: RouteMatch | None = None
        for pattern in self._patterns:
            if pattern.route.method not in (method, "ANY"):
                continue
            matched = pattern.match(parts)
            if matched is None:
                continue
            ranks, parameters = matched
            key = (not pattern.greedy, ranks, pattern.route.method != "ANY")
            if best is None or key > best:
                best, found = key, RouteMatch(pattern.route, parameters)
        if found is None and self._default is not None:
            return RouteMatch(self._default)
        return found


@dataclass(frozen=True)
class GatewayRequest:
    method: str
    target: str  # the request line's path and query, still percent-encoded
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"


def build_event(
    request: GatewayRequest,
    match: RouteMatch,
    *,
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The API Gateway HTTP API payload format 2.0 event for ``request``."""
    raw_path, _, raw_query = request.target.partition("?")
    raw_query = raw_query.partition("#")[0]
    headers, cookies = _headers_and_cookies(request.headers)
    now = time.time() if now is None else now
    request_id = request_id or str(uuid.uuid4())
    host = headers.get("host", "localhost")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(":", 1)[0].split(".", 1)[0],
            "http": {
                "method": request.method.upper(),
                "path": unquote(raw_path),
                "protocol": request.protocol,
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": match.route.route_key,
            "stage": "$default",
            "time": _clf_time(now),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    # Like API Gateway, leave out what the request does not have.
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        event["queryStringParameters"] = _query_parameters(raw_query)
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    if request.body:
        if _is_text(headers.get("content-type", ""), request.body):
            event["body"] = request.body.decode("utf-8")
        else:
            event["body"] = base64.b64encode(request.body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def _headers_and_cookies(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in pairs:
        name = name.lower()
        if name == "cookie":  # format 2.0 moves cookies out of the headers
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
        elif name in headers:
            headers[name] = f"{headers[name]},{value}"
        else:
            headers[name] = value
    return headers, cookies


def _query_parameters(raw_query: str) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
    return parameters


def _is_text(content_type: str, body: bytes) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    texty = (
        media_type.startswith(_TEXT_TYPES)
        or media_type.endswith(_TEXT_SUFFIXES)
        or media_type == _FORM
    )
    if not texty:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _clf_time(epoch: float) -> str:
    # Formatted by hand: strftime's %b follows the process locale.
    t = time.gmtime(epoch)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


@dataclass(frozen=True)
class GatewayResponse:
    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes = b""


def gateway_error(status: int, message: str) -> GatewayResponse:
    """An error API Gateway itself answers, such as 404 for no route."""
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return GatewayResponse(status, [("content-type", "application/json")], body)


def response_from_result(result: Any) -> GatewayResponse:
    """The HTTP response API Gateway makes of a function's (JSON-decoded) result."""
    if not isinstance(result, Mapping) or "statusCode" not in result:
        # Format 2.0 reads any other result as a 200 JSON body.
        text = result if isinstance(result, str) else json.dumps(result)
        return GatewayResponse(200, [("content-type", "application/json")], text.encode())
    try:
        return _structured_response(result)
    except (TypeError, ValueError, binascii.Error):
        # A malformed response is an integration failure: 502, as API Gateway answers.
        return gateway_error(502, "Internal Server Error")


def _structured_response(result: Mapping[str, Any]) -> GatewayResponse:
    status = int(result["statusCode"])
    if not 100 <= status <= 599:
        raise ValueError(f"statusCode {status} is not an HTTP status")
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((str(name), _header_value(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), _header_value(value)) for value in values)
    headers.extend(("set-cookie", str(cookie)) for cookie in result.get("cookies") or ())
    headers = [(name, value) for name, value in headers if name.lower() not in _HOP_BY_HOP]
    body = result.get("body") or ""
    if not isinstance(body, str):
        raise TypeError("body must be a string")
    if result.get("isBase64Encoded"):
        return GatewayResponse(status, headers, base64.b64decode(body, validate=True))
    return GatewayResponse(status, headers, body.encode("utf-8"))


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


__all__ = [
    "GatewayRequest",
    "GatewayResponse",
    "RouteMatch",
    "Router",
    "build_event",
    "gateway_error",
    "response_from_result",
]
