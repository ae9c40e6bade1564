"""Benchmark 5: cold start of each API function, against its bare third-party imports.

Subject: a fresh ``python -c`` process that imports ``functions/<name>/app.py``
(as Lambda's runtime does) and serves its first request in process, which
includes opening its PostgreSQL and Redis connections. Reference: a fresh
process that imports exactly the third-party modules the subject ended up
with, and nothing of ours. Both are timed from spawn to exit, interleaved.
The difference is the price of our own modules, building the app, and the
first request. ``python -X importtime`` lists the heaviest imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from functools import partial
from typing import Any

from storefront_dev.bench.api_events import http_event
from storefront_dev.bench.environment import BenchEnvironment
from storefront_dev.bench.measure import Figure, Report, interleaved, median
from storefront_dev.bench.processes import project_root

__all__ = ["bench_cold_start", "top_imports"]

# Runs in the subject process: import the function as Lambda does, serve one
# request, and report the third-party modules it loaded.
_SUBJECT = """
import importlib.util, json, os, sys, sysconfig
code_dir = {code_dir!r}
os.chdir(code_dir)
sys.path.insert(0, code_dir)
spec = importlib.util.spec_from_file_location("app", os.path.join(code_dir, "app.py"))
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
class Context:
    function_name = "storefront-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    aws_request_id = "cold-start"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:storefront-bench"
    def get_remaining_time_in_millis(self):
        return 10_000
response = module.handler(json.loads({event!r}), Context())
assert response["statusCode"] == {status}, response
site = sysconfig.get_paths()["purelib"]
third_party = [
    name for name, loaded in list(sys.modules.items())
    if (getattr(loaded, "__file__", None) or "").startswith(site)
    and not name.startswith(("storefront", "_virtualenv"))
]
sys.stderr.write(json.dumps(third_party) + "\\n")
"""

_REFERENCE = """
import importlib, json, sys
for name in json.loads(sys.stdin.read()):
    try:
        importlib.import_module(name)
    except Exception:
        pass
"""


def _requests(env: BenchEnvironment, product_id: str) -> dict[str, tuple[dict[str, Any], int]]:
    token = env.token("bench-customer")
    return {
        "catalog_api": (
            http_event(
                "GET",
                f"/products/{product_id}",
                route="/products/{product_id}",
                path_parameters={"product_id": product_id},
            ),
            200,
        ),
        "orders_api": (http_event("GET", "/orders", token=token), 200),
    }


def _run(command: list[str], environment: dict[str, str], stdin: str = "") -> tuple[float, str]:
    started = time.perf_counter()
    finished = subprocess.run(  # noqa: S603  (our interpreter, our code)
        command,
        input=stdin.encode(),
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = (time.perf_counter() - started) * 1000
    if finished.returncode != 0:
        raise RuntimeError(f"{command[:2]} failed:\n{finished.stderr.decode()[-2000:]}")
    return elapsed, finished.stderr.decode()


def _elapsed(command: list[str], environment: dict[str, str], stdin: str = "") -> float:
    return _run(command, environment, stdin)[0]


def top_imports(code: str, environment: dict[str, str], count: int = 8) -> list[tuple[str, int]]:
    """The top-level packages whose imports cost most (self time summed, µs)."""
    finished = subprocess.run(  # noqa: S603
        [sys.executable, "-X", "importtime", "-c", code],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    costs: Counter[str] = Counter()
    for line in finished.stderr.decode().splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = [part.strip() for part in line.removeprefix("import time:").split("|")]
        if not parts[0].isdigit():
            continue  # the header line
        costs[parts[2].split(".")[0]] += int(parts[0])
    return costs.most_common(count)


def bench_cold_start(
    env: BenchEnvironment, report: Report, *, product_id: str, repeats: int
) -> None:
    root = project_root()
    environment = {**os.environ, **env.environment()}
    # Bytecode as a deployment ships it (pip compiles the dependencies' at
    # install; a layer build can do the same for ours): without a .pyc each
    # cold start would compile our modules from source, and the reference,
    # whose .pyc pip wrote, would not.
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    for name, (event, status) in _requests(env, product_id).items():
        code_dir = str(root / "functions" / name)
        subject_code = _SUBJECT.format(code_dir=code_dir, event=json.dumps(event), status=status)
        subject = [sys.executable, "-c", subject_code]
        # One untimed run: it names the modules, and warms the OS file cache
        # for both sides alike.
        _, output = _run(subject, environment)
        modules = output.strip().splitlines()[-1]
        reference = [sys.executable, "-c", _REFERENCE]
        samples = interleaved(
            {
                "reference": partial(_elapsed, reference, environment, modules),
                "subject": partial(_elapsed, subject, environment),
            },
            repeats,
        )
        imports_only = (
            "import importlib.util, os, sys\n"
            f"os.chdir({code_dir!r}); sys.path.insert(0, {code_dir!r})\n"
            f"spec = importlib.util.spec_from_file_location('app', {code_dir + '/app.py'!r})\n"
            "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        )
        heaviest = ", ".join(
            f"{package} {micros / 1000:.0f} ms"
            for package, micros in top_imports(imports_only, environment)
        )
        report.add(
            Figure(
                "5 cold start",
                f"{name}: import + first request",
                median(samples["subject"]),
                "ms",
                reference="same third-party imports only",
                reference_value=median(samples["reference"]),
                target=1.3,
                samples=repeats,
                note=f"heaviest imports (self time): {heaviest}",
            )
        )
        report.notes.append(f"5 cold start, {name}: heaviest imports (self time): {heaviest}")
