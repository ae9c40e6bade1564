"""Collect an existing suite's tests once more, in a module of tests/cluster.

``globals().update(reuse("tests.integration.test_relay"))`` puts the suite's
test functions and its own fixtures into the calling module, where pytest
collects them again and resolves their fixtures from tests/cluster/conftest.py:
the same tests, on the cluster. A test the suite gains later runs on both
without a copy. ``leave_out`` names the tests that do not apply, each with
its reason; ``only`` picks a few tests of a suite that is mostly about
something else. A name that no longer exists is an error, so neither list
can go stale.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Mapping
from typing import Any

from _pytest.fixtures import FixtureFunctionDefinition

__all__ = ["reuse"]


def reuse(
    module_name: str,
    *,
    leave_out: Mapping[str, str] | None = None,
    only: Collection[str] | None = None,
) -> dict[str, Any]:
    """The tests and fixtures of ``module_name``, less ``leave_out`` (name: why)."""
    namespace = vars(importlib.import_module(module_name))
    named = set(leave_out or {}) | set(only or ())
    unknown = named - set(namespace)
    assert not unknown, f"{module_name} has no {sorted(unknown)}"
    tests = {
        name: value
        for name, value in namespace.items()
        if name.startswith("test_")
        and callable(value)
        and name not in (leave_out or {})
        and (only is None or name in only)
    }
    fixtures = {
        name: value
        for name, value in namespace.items()
        if isinstance(value, FixtureFunctionDefinition)
    }
    return fixtures | tests
