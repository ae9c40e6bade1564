"""Powertools Logger, Metrics and Tracer: one of each per container.

The service name comes from POWERTOOLS_SERVICE_NAME, the metrics namespace
from POWERTOOLS_METRICS_NAMESPACE, and tracing is off where
POWERTOOLS_TRACE_DISABLED is set (locally and in tests).

With tracing off no Tracer is made at all: Powertools' Tracer imports the
X-Ray SDK, and botocore with it, even when it is disabled (it resolves its
provider before it reads the switch), and they were among the heaviest
imports of a cold start as built (``make bench``, figure 5: about a fifth of
it). The handlers then run undecorated, which is what a disabled Tracer's
decorator amounts to.
"""

import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics, Tracer

_SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "storefront")
# Powertools' own reading of a boolean variable (shared.functions.strtobool).
_TRUE = frozenset({"1", "y", "yes", "t", "true", "on"})

Handler = Callable[..., Any]


def tracing_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether Powertools would trace (Tracer._is_tracer_disabled): only on
    Lambda (LAMBDA_TASK_ROOT), not under ``sam local`` or Chalice's local
    mode, and not with POWERTOOLS_TRACE_DISABLED true."""
    if environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUE:
        return False
    local = environ.get("AWS_SAM_LOCAL") or environ.get("AWS_CHALICE_CLI_MODE")
    return bool(environ.get("LAMBDA_TASK_ROOT")) and not local


class HandlerTracer(Protocol):
    """What the handlers use of a Tracer."""

    def capture_lambda_handler(self, lambda_handler: Handler) -> Handler: ...


class Untraced:
    """Stands in for the Tracer when tracing is off: the handler as it is."""

    def capture_lambda_handler(self, lambda_handler: Handler) -> Handler:
        return lambda_handler


# Every message here is plain text: the default deserializer would try
# json.loads on each one first (Powertools accepts JSON strings as messages),
# a fifth of what a request's log line costs (make bench, figure 4).
logger = Logger(service=_SERVICE, use_rfc3339=True, json_deserializer=str)
metrics = Metrics(namespace="Storefront", service=_SERVICE)
tracer: HandlerTracer = Tracer(service=_SERVICE) if tracing_enabled() else Untraced()
