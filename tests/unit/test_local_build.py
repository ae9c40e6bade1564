"""storefront_dev.local_build: what the build smoke test and make bench read of a build."""

from __future__ import annotations

import py_compile
import sys
from pathlib import Path

from storefront_dev.local_build import function_layers, modules_with_bytecode

ROOT = Path(__file__).resolve().parents[2]
TAG = sys.implementation.cache_tag


def test_only_unchecked_hash_bytecode_of_the_given_python_counts(tmp_path: Path) -> None:
    modes = {
        "unchecked": py_compile.PycInvalidationMode.UNCHECKED_HASH,
        "checked": py_compile.PycInvalidationMode.CHECKED_HASH,
        # Stale as soon as the files are unpacked with other times.
        "timestamp": py_compile.PycInvalidationMode.TIMESTAMP,
    }
    for name, mode in modes.items():
        source = tmp_path / "package" / f"{name}.py"
        source.parent.mkdir(exist_ok=True)
        source.write_text("VALUE = 1\n")
        py_compile.compile(str(source), invalidation_mode=mode, doraise=True)
    (tmp_path / "package" / "uncompiled.py").write_text("VALUE = 2\n")
    assert modules_with_bytecode(tmp_path, TAG) == (1, 4)
    assert modules_with_bytecode(tmp_path, "cpython-399") == (0, 4)  # another Python's tag


def test_functions_run_with_the_global_layers_in_the_template_s_order() -> None:
    assert function_layers(ROOT, "CatalogApiFunction") == ["DependenciesLayer", "StorefrontLayer"]
