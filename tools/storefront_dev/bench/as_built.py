"""What Lambda runs, laid out read-only for benchmark 5 (cold start as built).

The artifacts are ``sam build``'s output, made by the same layer Makefiles as
``make build`` but for this machine's platform (an aarch64 layer would not
import here) into ``.aws-sam/bench/``, with a cache of their own:
``sam build --cached`` rebuilds what changed, so the figure is never taken on
stale artifacts. Each function then gets, in Lambda's ``sys.path`` order:

- its built folder (``/var/task``);
- its layers, unpacked into one folder in the template's order, as Lambda
  unpacks them into ``/opt`` (``/opt/python``);
- a stand-in for the runtime's own boto3 and botocore (the dependencies layer
  leaves them out), with bytecode, as the runtime image has it.

The whole copy is made read-only, and checked unchanged at the end: on
Lambda nothing can write bytecode to ``/opt`` or ``/var/task``, so a module
the build shipped without bytecode is compiled at every cold start. (The
interpreter also runs with ``-B``: the permissions alone do not stop root.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from storefront_dev.local_build import function_layers, runtime_sources, sam_build

__all__ = ["BENCH_BUILD", "LambdaTree", "build_for_bench", "read_only_trees"]

# Under the checkout's .aws-sam/ (ignored by git), apart from make build's.
BENCH_BUILD = Path(".aws-sam") / "bench"
# The runtime's version: what the layers are built and their bytecode compiled for.
LAMBDA_PYTHON = "3.12"


@dataclass(frozen=True)
class LambdaTree:
    """One function's read-only copy: /var/task, /opt/python and the runtime's packages."""

    task: Path
    opt: Path
    runtime: Path

    @property
    def paths(self) -> list[str]:
        return [str(self.task), str(self.opt), str(self.runtime)]


def build_for_bench(root: Path, python: str) -> Path:
    """``sam build --cached`` for this platform and Python 3.12; the build folder."""
    print(
        f"==> sam build --cached into {BENCH_BUILD} (this platform, Python {LAMBDA_PYTHON})",
        file=sys.stderr,
        flush=True,
    )
    variables = {"LAMBDA_PYTHON": LAMBDA_PYTHON, "BYTECODE_PYTHON": python}
    return sam_build(root, root / BENCH_BUILD, variables, cached=True)


@contextlib.contextmanager
def read_only_trees(
    root: Path, build: Path, python: str, functions: Mapping[str, str]
) -> Iterator[dict[str, LambdaTree]]:
    """A read-only copy for each of ``functions`` (name -> logical id), removed at the end."""
    with tempfile.TemporaryDirectory(prefix="sf-cold-") as scratch:
        base = Path(scratch)
        try:
            runtime = _runtime_stand_in(base / "runtime", python)
            opts: dict[tuple[str, ...], Path] = {}
            trees: dict[str, LambdaTree] = {}
            for name, logical_id in functions.items():
                layers = tuple(function_layers(root, logical_id))
                if layers not in opts:  # functions with the same layers share one copy
                    opts[layers] = _unpack(build, layers, base / f"opt-{len(opts)}" / "python")
                task = base / name / "task"
                shutil.copytree(build / logical_id, task)
                trees[name] = LambdaTree(task, opts[layers], runtime)
            _set_writable(base, writable=False)
            before = _contents(base)
            yield trees
            written = sorted(_contents(base) - before)
            if written:
                raise RuntimeError(f"the read-only copy was written to: {written[:5]}")
        finally:
            _set_writable(base, writable=True)  # so that it can be removed


def _unpack(build: Path, layers: tuple[str, ...], target: Path) -> Path:
    # A later layer's file replaces an earlier one's, as in /opt.
    for layer in layers:
        shutil.copytree(build / layer / "python", target, dirs_exist_ok=True)
    return target


def _runtime_stand_in(folder: Path, python: str) -> Path:
    folder.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__")
    for source in runtime_sources():
        if source.is_dir():
            shutil.copytree(source, folder / source.name, ignore=ignore)
        else:
            shutil.copy2(source, folder / source.name)
    # As pip compiles the runtime's packages at install: timestamp-checked,
    # and valid, since copying kept the sources' times.
    subprocess.run(  # noqa: S603  (a Python 3.12 that tools/find-python312 found)
        [python, "-m", "compileall", "-q", "-j", "0", folder], check=True
    )
    return folder


def _set_writable(base: Path, *, writable: bool) -> None:
    write = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    for directory, _, files in os.walk(base):
        for path in (directory, *(os.path.join(directory, name) for name in files)):
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                continue
            os.chmod(path, (mode | stat.S_IWUSR) if writable else (mode & ~write))


def _contents(base: Path) -> set[str]:
    return {
        os.path.join(directory, name)
        for directory, directories, files in os.walk(base)
        for name in (*directories, *files)
    }
