"""Turns a FastAPI app into a Lambda handler for API Gateway HTTP API events."""

from __future__ import annotations

import warnings
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from fastapi import FastAPI
from mangum import Mangum

from storefront.observability import logger, metrics, tracer
from storefront.runtime import container_loop
from storefront.web.warm_up import warm_up

LambdaHandler = Any

# Mangum base64-encodes every type it does not know as text; problem+json is text.
TEXT_MIME_TYPES = ["application/json", "application/problem+json", "text/"]

# Routes that record no metric (health, writes) are normal, not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def api_handler(app: FastAPI) -> LambdaHandler:
    # Set the container's loop before Mangum looks for one, so every
    # invocation (and every pooled connection) lives on the same loop.
    container_loop()
    asgi = Mangum(app, lifespan="off", text_mime_types=TEXT_MIME_TYPES)
    # With SnapStart, the first requests' work is done before the snapshot.
    warm_up(asgi)

    @metrics.log_metrics
    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        container_loop()  # Mangum runs the request on the current loop: ours
        response: dict[str, Any] = asgi(event, context)  # type: ignore[arg-type]
        return without_type_when_bodiless(response, event)

    return handler


def without_type_when_bodiless(response: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """Drop the content type Mangum gives every answer, when there is no body.

    Mangum adds ``content-type: application/json`` to any payload 2.0 answer
    that has none, even a 202, 204 or 304 without content, which would then
    claim a JSON document that is not there (RFC 9110, section 8.3). A HEAD's
    answer keeps its type: it is the GET's, whose body is left out.
    """
    headers = response.get("headers")
    method = event.get("requestContext", {}).get("http", {}).get("method")
    if not response.get("body") and headers and method != "HEAD":
        headers.pop("content-type", None)
    return response
