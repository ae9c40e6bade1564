"""Each function in a worker process of its own: a warm Lambda container.

A worker starts on the function's first invocation (a cold start), imports the
handler from the function's CodeUri directory as Lambda does, and then serves
one invocation at a time, keeping module state (engine, Redis client, event
loop) between invocations. Functions never share a process, so one function's
imports or globals cannot leak into another's.

Events and results cross the process boundary as JSON, as they do in Lambda, so
a result Lambda could not marshal fails here too. The Timeout from the template
is a real deadline: past it the worker is killed, and the next invocation pays
a new cold start, as in Lambda. Any caller with an event can invoke a function:
the gateway with API Gateway events, the scheduler with EventBridge events.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from storefront_dev.lambda_container import region, serve_container
from storefront_dev.templates import FunctionSpec

# Lambda gives the init phase 10 s; first imports on a cold local disk can be slower.
INIT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Invocation:
    request_id: str
    result: Any = None  # the handler's return value, JSON-decoded
    error: Mapping[str, Any] | None = None  # Lambda's {"errorType", "errorMessage", ...}

    @property
    def failed(self) -> bool:
        return self.error is not None


def container_environment(spec: FunctionSpec, stack: Mapping[str, str]) -> dict[str, str]:
    """What a function's container sees: template literals, Lambda's own, the stack's."""
    return {
        **spec.environment,
        "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": region(),
        "AWS_DEFAULT_REGION": region(),
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
        **stack,
    }


class FunctionWorker:
    """One function's warm container, started on demand and restarted when it dies."""

    def __init__(self, spec: FunctionSpec, stack_environment: Mapping[str, str]) -> None:
        self.spec = spec
        self._environment = container_environment(spec, stack_environment)
        self._lock = threading.Lock()  # a container serves one invocation at a time
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._init_ms: float | None = None  # reported once, on the first invocation
        self._memory_used_mb = 0
        self._stopped = False

    def invoke(self, event: Mapping[str, Any]) -> Invocation:
        request_id = str(uuid.uuid4())
        message = json.dumps(event)
        with self._lock:
            if self._stopped:
                return Invocation(request_id, error=_error("Runtime.Stopped", "stack stopping"))
            _log(f"START RequestId: {request_id} Version: $LATEST")
            connection, init_error = self._warm_connection()
            started = time.perf_counter()  # Duration excludes init, as in Lambda
            if connection is None:
                return self._finish(request_id, started, None, init_error, status="error")
            try:
                connection.send((request_id, message))
                if not connection.poll(self.spec.timeout_seconds):
                    self._kill()
                    seconds = f"{self.spec.timeout_seconds:.2f}"
                    _log(f"{_now()} {request_id} Task timed out after {seconds} seconds")
                    error = _error("Sandbox.Timedout", f"Task timed out after {seconds} seconds")
                    return self._finish(request_id, started, None, error, status="timeout")
                kind, body, duration_ms, memory_mb = connection.recv()
            except (EOFError, OSError):
                code = self._reap()
                if self._stopped:
                    # Killed by stop(): the stack is going down, nothing failed.
                    error = _error("Runtime.Stopped", "the local stack stopped mid-invocation")
                    return self._finish(request_id, started, None, error, status="stopped")
                detail = f"Runtime exited with error: exit status {code}"
                _log(f"RequestId: {request_id} Error: {detail}\nRuntime.ExitError")
                error = _error("Runtime.ExitError", f"RequestId: {request_id} Error: {detail}")
                return self._finish(request_id, started, None, error, status="error")
            self._memory_used_mb = memory_mb
            if kind == "result":
                return self._finish(request_id, started, duration_ms, None, result=json.loads(body))
            return self._finish(request_id, started, duration_ms, json.loads(body))

    def _finish(
        self,
        request_id: str,
        started: float,
        duration_ms: float | None,
        error: Mapping[str, Any] | None,
        *,
        result: Any = None,
        status: str | None = None,
    ) -> Invocation:
        if duration_ms is None:
            duration_ms = (time.perf_counter() - started) * 1000
        fields = [
            f"REPORT RequestId: {request_id}",
            f"Duration: {duration_ms:.2f} ms",
            f"Billed Duration: {max(1, math.ceil(duration_ms))} ms",
            f"Memory Size: {self.spec.memory_mb} MB",
            f"Max Memory Used: {self._memory_used_mb} MB",
        ]
        if self._init_ms is not None:
            fields.append(f"Init Duration: {self._init_ms:.2f} ms")
            self._init_ms = None
        if status is not None:
            fields.append(f"Status: {status}")
        _log(f"END RequestId: {request_id}")
        _log("\t".join(fields))
        return Invocation(request_id, result, error)

    def _warm_connection(self) -> tuple[Connection | None, Mapping[str, Any] | None]:
        """The live container's connection, cold-starting one if there is none."""
        if self._process is not None and self._process.is_alive() and self._connection:
            return self._connection, None
        self._reap()
        context = multiprocessing.get_context("spawn")  # a fresh interpreter, like a container
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=serve_container,
            args=(child_end, self.spec, self._environment),
            name=f"lambda:{self.spec.logical_id}",
            daemon=True,
        )
        started = time.perf_counter()
        process.start()
        child_end.close()
        self._process, self._connection = process, parent_end
        try:
            ready = parent_end.poll(INIT_TIMEOUT_SECONDS)
            kind, detail = parent_end.recv() if ready else ("init_error", None)
        except (EOFError, OSError):
            kind, detail = "init_error", None
        self._init_ms = (time.perf_counter() - started) * 1000
        if kind == "ready":
            return parent_end, None
        self._kill()
        return None, detail or _error("Runtime.Unknown", "the function's init phase failed")

    def _reap(self) -> int | None:
        """Forget a dead container; its exit code, if it had one."""
        process, self._process = self._process, None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if process is None:
            return None
        process.join(timeout=1)
        return process.exitcode

    def _kill(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
        self._reap()

    def stop(self) -> None:
        self._stopped = True
        # An idle container exits on its own when its connection closes; one
        # that is mid-invocation is killed, and that invocation fails.
        if self._lock.acquire(timeout=0.5):
            try:
                if self._connection is not None:
                    self._connection.close()
                    self._connection = None
                if self._process is not None:
                    self._process.join(timeout=2)
                self._kill()
            finally:
                self._lock.release()
        elif self._process is not None:
            self._process.kill()


@dataclass
class FunctionFleet:
    """Every function of the template, each in its own warm container."""

    functions: Mapping[str, FunctionSpec]
    stack_environment: Mapping[str, str]
    _workers: dict[str, FunctionWorker] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for logical_id, spec in self.functions.items():
            self._workers[logical_id] = FunctionWorker(spec, self.stack_environment)

    def invoke(self, function_id: str, event: Mapping[str, Any]) -> Invocation:
        return self._workers[function_id].invoke(event)

    def stop(self) -> None:
        for worker in self._workers.values():
            worker.stop()


def _error(error_type: str, message: str) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _log(line: str) -> None:
    # One write per line, flushed, so lines from the gateway's threads and from
    # the containers (which share this stream) never interleave mid-line.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


__all__ = ["FunctionFleet", "FunctionWorker", "Invocation", "container_environment"]
