"""A function's ``app.py`` run in this process, as the Lambda runtime runs it:
for the function tests and the warm-invocation benchmark."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType

from storefront.settings import get_settings

__all__ = ["load_function", "settings_environment"]


def load_function(root: Path, name: str) -> ModuleType:
    """``functions/<name>/app.py`` imported the way the Lambda runtime imports it."""
    spec = importlib.util.spec_from_file_location(
        f"{name}_app", root / "functions" / name / "app.py"
    )
    if spec is None or spec.loader is None:
        raise RuntimeError(f"functions/{name}/app.py cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def settings_environment(values: Mapping[str, str]) -> Iterator[None]:
    """These environment variables while inside, the earlier ones after; the
    settings (read once per container) are read again on both sides."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()
