"""Every events module is registered, so no worker takes another group's event for unknown."""

from __future__ import annotations

import ast
from pathlib import Path

import storefront

PACKAGE = Path(storefront.__file__).parent


def test_every_events_module_is_imported_by_the_event_types_module() -> None:
    declared = {
        f"storefront.{path.parent.name}.events"
        for path in PACKAGE.glob("*/events.py")
        if "(Payload)" in path.read_text()
    }
    tree = ast.parse((PACKAGE / "event_types.py").read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }

    assert declared, "no events module found"
    assert declared <= imported, f"add {declared - imported} to storefront/event_types.py"


def test_workers_import_it() -> None:
    assert "import storefront.event_types" in (PACKAGE / "events" / "worker.py").read_text()
