"""``sam build`` for this machine: the template and layer Makefiles of ``make build``.

The dependencies layer is built for the local platform instead of Lambda's
(aarch64 by default), so it can be imported here: the layer Makefile reads
``LAMBDA_PLATFORM`` and the rest from the environment, which ``sam build``
passes on to makefile builds. Used by ``make bench`` (cold start as built, on
Python 3.12) and by the build smoke test (on the suite's own interpreter).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from packaging.tags import sys_tags

__all__ = [
    "RUNTIME_MODULES",
    "find_python312",
    "function_layers",
    "local_platforms",
    "modules_with_bytecode",
    "runtime_sources",
    "sam_build",
    "sam_cli",
]

# What Lambda's Python runtime itself puts on sys.path, after the layers:
# boto3 and botocore with their dependencies (the dependencies layer leaves
# them out). The local copies of them stand in for the runtime's.
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
# A .pyc header's flags (bytes 4-8, PEP 552): 0b01 is hash-based, source unchecked.
UNCHECKED_HASH = 0b01


def sam_cli(root: Path) -> Path:
    """The SAM CLI of the checkout's own virtualenv (``make test`` installs it)."""
    return root / ".venv-sam" / "bin" / "sam"


def find_python312(root: Path) -> str:
    """A Python 3.12's path (tools/find-python312), or RuntimeError saying what to install."""
    found = subprocess.run(  # noqa: S603  (the checkout's own script)
        [root / "tools" / "find-python312"], capture_output=True, text=True, check=False
    )
    if found.returncode != 0:
        raise RuntimeError(found.stderr.strip())
    return found.stdout.strip()


def local_platforms() -> list[str]:
    """The manylinux tags this machine installs wheels for (any Python version)."""
    return sorted({tag.platform for tag in sys_tags() if tag.platform.startswith("manylinux")})


def sam_build(
    root: Path,
    work: Path,
    variables: Mapping[str, str],
    *,
    cached: bool = False,
    timeout: float = 900,
) -> Path:
    """``sam build`` into ``work/build``, with ``variables`` for the layer Makefiles.

    ``work`` is also sam's working directory (it keeps its state in
    ``.aws-sam/`` there) and holds its cache: sam's cache key ignores the
    environment, so a layer built for this platform must never be reused by
    ``make build``, nor the other way round.
    """
    sam = sam_cli(root)
    if not sam.exists():
        raise RuntimeError(f"no SAM CLI at {sam}: run `make {sam.relative_to(root)}`")
    environment = {
        **os.environ,
        "LAMBDA_PLATFORM": " ".join(local_platforms()),
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        **variables,
    }
    work.mkdir(parents=True, exist_ok=True)
    build, cache = work / "build", work / "cache"
    command: list[str | Path] = [sam, "build", "--template-file", root / "template.yaml"]
    command += ["--build-dir", build, "--cache-dir", cache, *(["--cached"] if cached else [])]
    built = subprocess.run(  # noqa: S603  (the checkout's SAM CLI)
        command,
        cwd=work,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if built.returncode != 0:
        raise RuntimeError(f"sam build failed:\n{built.stdout[-3000:]}{built.stderr[-3000:]}")
    return build


def function_layers(root: Path, logical_id: str) -> list[str]:
    """The logical ids of the layers a function runs with, in the template's order."""
    # cfn-flip reads the short intrinsic tags (!Ref); imported here, as in templates.py.
    from cfn_tools import load_yaml

    document: dict[str, Any] = load_yaml((root / "template.yaml").read_text(encoding="utf-8"))
    properties = document["Resources"][logical_id].get("Properties", {})
    layers = properties.get("Layers", document.get("Globals", {}).get("Function", {}).get("Layers"))
    return [layer["Ref"] for layer in layers or []]


def runtime_sources() -> list[Path]:
    """The local copies of RUNTIME_MODULES: each package's folder, or its module file."""
    sources = []
    for name in RUNTIME_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{name} is not installed: `make install`")
        origin = Path(spec.origin)
        sources.append(origin.parent if spec.submodule_search_locations else origin)
    return sources


def modules_with_bytecode(folder: Path, cache_tag: str) -> tuple[int, int]:
    """(modules with unchecked hash-based bytecode for ``cache_tag``, all modules) in ``folder``.

    Unchecked: valid whatever the timestamps the files are unpacked with.
    ``cache_tag`` is an interpreter's ``sys.implementation.cache_tag`` (cpython-312).
    """
    modules = [path for path in folder.rglob("*.py") if "__pycache__" not in path.parts]
    compiled = 0
    for module in modules:
        pyc = module.parent / "__pycache__" / f"{module.stem}.{cache_tag}.pyc"
        if pyc.is_file():
            with pyc.open("rb") as header:
                flags = int.from_bytes(header.read(8)[4:8], "little")
            compiled += flags == UNCHECKED_HASH
    return compiled, len(modules)
