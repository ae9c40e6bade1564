"""``make openapi``: write the HTTP API's one OpenAPI document into the package.

    python -m storefront_dev.openapi            write layers/storefront/storefront/openapi.json
    python -m storefront_dev.openapi --check    exit 1 if the file is not what the code says

``make build`` runs it first, so the layer serves the document of the code it
ships (storefront.web.documentation); a test runs the check.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

__all__ = ["document_path", "main", "rendered"]


def document_path() -> Path:
    return Path(str(files("storefront").joinpath("openapi.json")))


def rendered() -> str:
    """The document as the file holds it: sorted keys, two-space indents."""
    from storefront.wiring import api_document

    document: dict[str, Any] = api_document()
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    path, text = document_path(), rendered()
    if args.check:
        if not path.exists() or path.read_text() != text:
            print(f"{path.name} is stale: run `make openapi`", file=sys.stderr)
            return 1
        return 0
    path.write_text(text)
    print(f"wrote {path.name}: {len(json.loads(text)['paths'])} paths")
    return 0


if __name__ == "__main__":
    sys.exit(main())
