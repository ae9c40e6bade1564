"""Invokes one built function the way Lambda would, from the build output alone.

Run as ``python -I -S invoke_built.py SPEC.json`` by the build smoke test:
isolated mode and no ``site`` leave only the standard library importable, and
the spec's paths are all that is added, in Lambda's order: the function's own
folder (``/var/task``), each layer's ``python/`` (``/opt/python``), then what
the runtime itself provides (``/var/runtime``: boto3, botocore). So an import
that succeeds here would succeed there, and a package missing from an
artifact fails the import.

The spec: ``paths``, ``handler`` ("app.handler"), ``events`` (invoked in turn,
in one warm container), ``remaining_ms`` (the context's time budget, counting
down from each invocation's start) and ``result`` (a file for the answers).
Standard library only: nothing else is importable before the paths are set.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any


class LambdaContext:
    """The attributes Powertools reads from Lambda's context, and a real countdown."""

    function_name = "storefront-smoke"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:storefront-smoke"
    log_group_name = "/aws/lambda/storefront-smoke"
    log_stream_name = "smoke"

    def __init__(self, remaining_ms: int) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main(spec_path: str) -> None:
    spec: dict[str, Any] = json.loads(Path(spec_path).read_text())
    sys.path[:0] = spec["paths"]
    module_name, attribute = spec["handler"].rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), attribute)
    answers = [handler(event, LambdaContext(spec["remaining_ms"])) for event in spec["events"]]
    # Where the code really came from: the build output, nothing else.
    origins = {
        name: getattr(sys.modules[name], "__file__", None)
        for name in ("storefront", "fastapi", "redis", "sqlalchemy", "asyncpg")
        if name in sys.modules
    }
    Path(spec["result"]).write_text(json.dumps({"answers": answers, "origins": origins}))


if __name__ == "__main__":
    main(sys.argv[1])
