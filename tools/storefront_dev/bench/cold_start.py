"""Benchmark 5: cold start of each API function as built, against its bare third-party imports.

Measured on what Lambda runs (as_built.py): the function's ``sam build``
output and its layers only, in a read-only copy, on Python 3.12
(``tools/find-python312``), with the bytecode the build shipped and none
written on the way.

Subject: a fresh ``python3.12 -I -S -B`` (isolated, so no virtualenv and no
``PYTHON*`` variable; no ``site``, so only the copy's folders are on the path)
that imports the handler's module as Lambda's runtime does and serves its
first request in process, opening its PostgreSQL and Redis connections.
Reference: the same interpreter, flags and copy importing exactly the
third-party modules the subject ended up with, and nothing of ours. Both are
timed from spawn to exit, interleaved. The difference is the price of our own
modules, building the app, and the first request. ``python -X importtime`` of
the subject lists the heaviest imports on that path.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from storefront_dev.bench.api_events import http_event
from storefront_dev.bench.as_built import LambdaTree, build_for_bench, read_only_trees
from storefront_dev.bench.environment import BenchEnvironment
from storefront_dev.bench.measure import Figure, Report, interleaved, median
from storefront_dev.bench.processes import project_root
from storefront_dev.local_build import find_python312, modules_with_bytecode
from storefront_dev.templates import load_template

__all__ = ["bench_cold_start", "top_imports"]

# The API functions measured: their folder name, and logical id in template.yaml.
FUNCTIONS = {"catalog_api": "CatalogApiFunction", "orders_api": "OrdersApiFunction"}
TARGET = 1.2
FLAGS = ("-I", "-S", "-B")
# Modules whose presence after init the notes report: what init should not need.
WATCHED = ("aws_xray_sdk", "boto3", "botocore")
# Our own code: every import under it is the cold path, so it would top the list.
OWN = ("storefront", "app")

# Runs in the subject process: import the function as Lambda does, serve one
# request, and report what it loaded.
_SUBJECT = """
import importlib, json, os, sys
task, opt, runtime = {paths!r}
sys.path[:0] = [task, opt, runtime]
os.chdir(task)
handler = getattr(importlib.import_module({module!r}), {attribute!r})
class Context:
    function_name = "storefront-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    aws_request_id = "cold-start"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:storefront-bench"
    def get_remaining_time_in_millis(self):
        return 10_000
response = handler(json.loads({event!r}), Context())
assert response["statusCode"] == {status}, response
modules = list(sys.modules.items())
third_party = [
    name for name, loaded in modules
    if (getattr(loaded, "__file__", None) or "").startswith((opt, runtime))
    and not name.startswith("storefront")
]
# Nothing could write bytecode: a module without its .pyc ran from source.
from_source = [
    name for name, loaded in modules
    if getattr(loaded, "__cached__", None) and not os.path.exists(loaded.__cached__)
]
sys.stderr.write(json.dumps({{"third_party": third_party, "from_source": from_source}}) + "\\n")
"""

_REFERENCE = """
import importlib, json, sys
sys.path[:0] = {paths!r}
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
    finished = subprocess.run(  # noqa: S603  (a Python 3.12 and our code)
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


def top_imports(
    command: Sequence[str], environment: dict[str, str], count: int = 8
) -> list[tuple[str, int]]:
    """The top-level packages whose imports cost most under ``command`` (a Python
    and its arguments): each one's outermost import, cumulative (µs), so it
    includes what that import pulled in. Our own modules are left out."""
    finished = subprocess.run(  # noqa: S603
        [command[0], "-X", "importtime", *command[1:]],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    costs: dict[str, int] = {}
    for line in finished.stderr.decode().splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = [part.strip() for part in line.removeprefix("import time:").split("|")]
        if not parts[1].isdigit():
            continue  # the header line
        package = parts[2].split(".")[0]
        if package not in OWN:
            costs[package] = max(costs.get(package, 0), int(parts[1]))
    return sorted(costs.items(), key=lambda item: item[1], reverse=True)[:count]


def bench_cold_start(
    env: BenchEnvironment, report: Report, *, product_id: str, repeats: int
) -> None:
    root = project_root()
    python = find_python312(root)
    build = build_for_bench(root, python)
    for layer in ("DependenciesLayer", "StorefrontLayer"):
        compiled, modules = modules_with_bytecode(build / layer / "python", "cpython-312")
        report.notes.append(
            f"5 cold start, as built: {layer} ships cpython-312 bytecode (unchecked hash)"
            f" for {compiled:,} of {modules:,} modules ({compiled / modules:.1%})"
        )
    environment = {**os.environ, **env.environment()}
    with read_only_trees(root, build, python, FUNCTIONS) as trees:
        for name, (event, status) in _requests(env, product_id).items():
            _bench_function(report, name, trees[name], python, environment, event, status, repeats)


def _bench_function(
    report: Report,
    name: str,
    tree: LambdaTree,
    python: str,
    environment: dict[str, str],
    event: dict[str, Any],
    status: int,
    repeats: int,
) -> None:
    spec = load_template(project_root() / "template.yaml").functions[FUNCTIONS[name]]
    code = _SUBJECT.format(
        paths=tree.paths,
        module=spec.handler_module,
        attribute=spec.handler_attribute,
        event=json.dumps(event),
        status=status,
    )
    subject = [python, *FLAGS, "-c", code]
    # One untimed run: it names the modules, and warms the OS file cache for
    # both sides alike.
    _, output = _run(subject, environment)
    loaded = json.loads(output.strip().splitlines()[-1])
    reference = [python, *FLAGS, "-c", _REFERENCE.format(paths=tree.paths[1:])]
    modules = json.dumps(loaded["third_party"])
    samples = interleaved(
        {
            "reference": partial(_elapsed, reference, environment, modules),
            "subject": partial(_elapsed, subject, environment),
        },
        repeats,
    )
    heaviest = ", ".join(
        f"{package} {micros / 1000:.0f} ms" for package, micros in top_imports(subject, environment)
    )
    watched = {package: package in loaded["third_party"] for package in WATCHED}
    report.add(
        Figure(
            "5 cold start",
            f"{name}: import + first request, as built",
            median(samples["subject"]),
            "ms",
            reference="same third-party imports, with bytecode",
            reference_value=median(samples["reference"]),
            target=TARGET,
            samples=repeats,
            note=f"heaviest imports (cumulative): {heaviest}",
        )
    )
    report.notes.append(
        f"5 cold start, {name}: heaviest imports on the cold path (cumulative, each with what"
        f" it imports): {heaviest}; loaded by the first answer: "
        + ", ".join(f"{package} {'yes' if there else 'no'}" for package, there in watched.items())
        + f"; ran from source (no bytecode shipped): {', '.join(loaded['from_source']) or 'none'}"
    )
