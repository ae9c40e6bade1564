"""One scheduled function in a process of its own, invoked back to back.

``python -m storefront_dev.bench.function_runner OutboxRelayFunction --ready-file F``

The benchmarks and chaos scenarios run the relay and the workers as real
processes, so they can be measured the way they run on Lambda (in loop mode,
each invocation works until its budget, the template's Timeout, runs out) and
killed with SIGKILL at any instruction. The process is one warm container:
the handler module is imported once from the function's CodeUri, as Lambda
does, and each invocation gets an EventBridge Scheduler event and a context
with a real deadline; the next invocation starts as soon as one ends (the
template's schedules overlap their ticks, so none waits for a tick).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storefront_dev.lambda_container import LambdaContext
from storefront_dev.lambda_process import container_environment
from storefront_dev.templates import FunctionSpec, load_template

__all__ = ["function_spec", "main"]


def function_spec(root: Path, logical_id: str) -> FunctionSpec:
    functions = load_template(root / "template.yaml").functions
    try:
        return functions[logical_id]
    except KeyError:
        raise SystemExit(f"{logical_id} is not a function of {root / 'template.yaml'}") from None


def scheduled_event(spec: FunctionSpec) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "123456789012",
        "time": now,
        "region": "us-east-1",
        "resources": [
            f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{spec.logical_id}"
        ],
        "detail": "{}",
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("function", help="logical id in template.yaml, e.g. OutboxRelayFunction")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the checkout")
    parser.add_argument("--ready-file", type=Path, help="touched once the handler is imported")
    parser.add_argument(
        "--timeout", type=int, help="seconds per invocation (default: the template's Timeout)"
    )
    parser.add_argument("--invocations", type=int, default=0, help="stop after N (0: never)")
    args = parser.parse_args(argv)
    spec = function_spec(args.root.resolve(), args.function)
    if args.timeout:
        spec = dataclasses.replace(spec, timeout_seconds=int(args.timeout))
    # The template's variables first, then what the caller set (servers, prefix).
    os.environ.update(container_environment(spec, dict(os.environ)))
    os.chdir(spec.code_dir)
    sys.path.insert(0, str(spec.code_dir))
    handler = getattr(importlib.import_module(spec.handler_module), spec.handler_attribute)
    if args.ready_file is not None:
        args.ready_file.touch()
    log_stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
    count = 0
    while not args.invocations or count < args.invocations:
        context = LambdaContext(str(uuid.uuid4()), spec, log_stream)
        try:
            handler(scheduled_event(spec), context)
        except Exception as error:
            # As Lambda would: the invocation failed, the container lives on.
            print(f"[ERROR] {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        count += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
