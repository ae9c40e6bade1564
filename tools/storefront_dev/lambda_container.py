"""Inside a function's container process: Lambda's Python runtime, in brief.

Init once (environment, task root, handler import), then invocations until the
host closes the connection. Each invocation gets a context with a real
deadline; an exception becomes Lambda's error payload, logged the way Lambda's
runtime logs it. Only the standard library is imported before the handler's
own module, so the measured init is the function's, not this module's.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import resource
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from storefront_dev.templates import FunctionSpec

ACCOUNT_ID = "123456789012"


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


class LambdaContext:
    """The context object Lambda passes to a handler, with a real deadline."""

    def __init__(self, request_id: str, spec: FunctionSpec, log_stream: str) -> None:
        self.aws_request_id = request_id
        self.function_name = spec.logical_id
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = spec.memory_mb
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region()}:{ACCOUNT_ID}:function:{spec.logical_id}"
        )
        self.log_group_name = f"/aws/lambda/{spec.logical_id}"
        self.log_stream_name = log_stream
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = time.monotonic() + spec.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def serve_container(
    connection: Connection, spec: FunctionSpec, environment: Mapping[str, str]
) -> None:
    """The container's main loop: init once, then invocations until the pipe closes."""
    # Ctrl-C reaches the whole process group; the stack decides when containers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(environment)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    handler = _init(connection, spec)
    if handler is None:
        return
    day = datetime.now(UTC).strftime("%Y/%m/%d")
    log_stream = f"{day}/[$LATEST]{uuid.uuid4().hex}"
    while True:
        try:
            request_id, message = connection.recv()
        except (EOFError, OSError):
            return
        context = LambdaContext(request_id, spec, log_stream)
        started = time.perf_counter()
        kind, body = _run(handler, json.loads(message), context)
        duration_ms = (time.perf_counter() - started) * 1000
        sys.stdout.flush()
        sys.stderr.flush()
        connection.send((kind, body, duration_ms, _max_memory_mb()))


def _init(connection: Connection, spec: FunctionSpec) -> Callable[..., Any] | None:
    try:
        # Lambda runs the handler module from the task root, with it first on
        # sys.path; a task root that is not there (yet) fails like an import.
        os.chdir(spec.code_dir)
        sys.path.insert(0, str(spec.code_dir))
        module = importlib.import_module(spec.handler_module)
        handler = getattr(module, spec.handler_attribute)
    except Exception as error:
        name = spec.handler_module
        failure = _failure(error, "Runtime.ImportModuleError", f"Unable to import module {name!r}")
        connection.send(("init_error", failure))
        return None
    connection.send(("ready", None))
    return handler  # type: ignore[no-any-return]


def _run(handler: Callable[..., Any], event: Any, context: LambdaContext) -> tuple[str, str]:
    try:
        result = handler(event, context)
    except Exception as error:
        return "error", json.dumps(_failure(error))
    try:
        return "result", json.dumps(result)
    except (TypeError, ValueError) as error:
        return "error", json.dumps(_failure(error, "Runtime.MarshalError", "Unable to marshal"))


def _failure(error: Exception, error_type: str | None = None, prefix: str = "") -> dict[str, Any]:
    """Log an error as Lambda's Python runtime does and return its error payload."""
    error_type = error_type or type(error).__name__
    message = f"{prefix}: {error}" if prefix else str(error)
    stack = traceback.format_tb(error.__traceback__)
    sys.stderr.write(f"[ERROR] {error_type}: {message}\nTraceback (most recent call last):\n")
    sys.stderr.write("".join(stack))
    sys.stderr.flush()
    return {"errorType": error_type, "errorMessage": message, "stackTrace": stack}


def _max_memory_mb() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return math.ceil(peak / (1024 * 1024 if sys.platform == "darwin" else 1024))


__all__ = [
    "ACCOUNT_ID",
    "LambdaContext",
    "region",
    "serve_container",
]
