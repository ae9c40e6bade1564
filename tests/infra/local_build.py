"""The pieces of the build smoke test: a `sam build` for the local interpreter,
a stand-in for Lambda's own runtime packages, and invocations of the built
functions in fresh, isolated interpreters (see invoke_built.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import storefront_dev.local_build
from storefront_dev.templates import SCHEDULE_EVENT_TYPES, FunctionSpec

ROOT = Path(__file__).resolve().parents[2]
SAM = storefront_dev.local_build.sam_cli(ROOT)
LAYERS = ("DependenciesLayer", "StorefrontLayer")
INVOKER = Path(__file__).with_name("invoke_built.py")


def sam_build(work: Path) -> Path:
    """``sam build`` into ``work/build``, with layers for the running interpreter.

    Its bytecode too: compiled by this interpreter, for the version the layer
    is built for (the Makefiles' BYTECODE_PYTHON), not by Lambda's 3.12.
    """
    variables = {
        "LAMBDA_PYTHON": f"{sys.version_info.major}.{sys.version_info.minor}",
        "PIP_PYTHON": sys.executable,
        "BYTECODE_PYTHON": sys.executable,
        "REQUIREMENTS": str(local_requirements(work / "requirements.txt")),
    }
    return storefront_dev.local_build.sam_build(ROOT, work, variables, timeout=600)


def lock_entries(lock: Path) -> list[tuple[str, str, set[str]]]:
    """(name, pin line, names its "# via" comment gives) for each pin of a uv lock file."""
    entries: list[tuple[str, str, set[str]]] = []
    for line in lock.read_text().splitlines():
        if pin := re.match(r"^([A-Za-z0-9_.-]+)==", line):
            entries.append((pin.group(1).lower(), line, set()))
        elif (via := re.match(r"^\s+#\s+(?:via\s+)?([A-Za-z0-9_.-]+)", line)) and entries:
            entries[-1][2].add(via.group(1).lower())
    for _, _, names in entries:
        names.discard("via")  # the heading of a list of several
    return entries


def lock_requirers() -> dict[str, set[str]]:
    return {name: via for name, _, via in lock_entries(ROOT / "requirements.lock")}


def local_requirements(target: Path) -> Path:
    """requirements.lock's packages pinned for the local Python, from requirements-dev.lock.

    requirements.lock is resolved for 3.12, and some of its pins need 3.12.
    The dev lock is universal (3.11+, with markers), so it pins every runtime
    package for this interpreter, and what only they pull in on older
    versions (async-timeout for redis on early 3.11).
    """
    runtime = set(lock_requirers())
    lines = [
        line
        for name, line, via in lock_entries(ROOT / "requirements-dev.lock")
        if name in runtime or (via and via <= runtime)
    ]
    target.write_text("\n".join(lines) + "\n")
    return target


def lambda_runtime(folder: Path) -> Path:
    """A stand-in for /var/runtime: links to the local copies of what it holds."""
    for source in storefront_dev.local_build.runtime_sources():
        (folder / source.name).symlink_to(source)
    return folder


def sample_events(spec: FunctionSpec, headers: dict[str, str]) -> list[dict[str, Any]]:
    """The events to invoke a function with (none: it is only imported).

    API functions: their GET samples, safe to repeat, with ``headers`` (an
    admin's token opens every one). Scheduled ones: their scheduled event.
    """
    folder = ROOT / "events" / spec.code_dir.name
    if "HttpApi" in spec.event_types:
        events = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
        gets = [event for event in events if event["requestContext"]["http"]["method"] == "GET"]
        assert gets, f"{spec.logical_id}: add a GET sample event to {folder}"
        for event in gets:
            event["headers"] = event.get("headers", {}) | {k.lower(): v for k, v in headers.items()}
        return gets
    if set(spec.event_types) & set(SCHEDULE_EVENT_TYPES):
        scheduled = folder / "scheduled.json"
        assert scheduled.is_file(), f"{spec.logical_id}: add {scheduled}"
        return [json.loads(scheduled.read_text())]
    return []


@dataclass
class Invocation:
    events: list[dict[str, Any]]
    process: subprocess.Popen[bytes]
    folder: Path
    outcome: dict[str, Any] = field(default_factory=dict)

    @property
    def log(self) -> str:
        return (self.folder / "stderr.txt").read_text()[-4000:]


def start_invocation(
    paths: list[Path],
    function: FunctionSpec,
    events: list[dict[str, Any]],
    remaining_ms: int,
    environment: dict[str, str],
    folder: Path,
    pycache: Path,
) -> Invocation:
    """Invoke a built function in the background (files, not pipes: none fills up)."""
    request = {
        "paths": [str(path) for path in paths],
        "handler": function.handler,
        "events": events,
        "remaining_ms": remaining_ms,
        "result": str(folder / "result.json"),
    }
    spec = folder / "spec.json"
    spec.write_text(json.dumps(request))
    with (folder / "stdout.txt").open("wb") as out, (folder / "stderr.txt").open("wb") as err:
        process = subprocess.Popen(
            # Bytecode goes to a folder of its own: the artifacts stay as
            # built, and later invocations do not compile every module again.
            [sys.executable, "-I", "-S", "-X", f"pycache_prefix={pycache}", INVOKER, spec],
            env=environment,
            stdout=out,
            stderr=err,
        )
    return Invocation(events, process, folder)


def finish(invocation: Invocation, timeout: float = 120) -> Invocation:
    invocation.process.wait(timeout)
    result = invocation.folder / "result.json"
    if result.is_file():
        invocation.outcome = json.loads(result.read_text())
    return invocation
