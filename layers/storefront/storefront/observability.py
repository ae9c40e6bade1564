"""Powertools Logger, Metrics and Tracer: one of each per container.

The service name comes from POWERTOOLS_SERVICE_NAME, the metrics namespace
from POWERTOOLS_METRICS_NAMESPACE, and tracing is off where
POWERTOOLS_TRACE_DISABLED is set (locally and in tests).
"""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

_SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "storefront")

logger = Logger(service=_SERVICE, use_rfc3339=True)
metrics = Metrics(namespace="Storefront", service=_SERVICE)
tracer = Tracer(service=_SERVICE)
