"""Who may do what. The seam the security issue fills in.

Catalog writes depend on :data:`CatalogWriter`. Until authentication lands,
every caller is allowed; the security work replaces
:func:`allow_catalog_write` with an admin check, and no route changes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends


async def allow_catalog_write() -> None:
    """Admin-only once authentication exists; open until then."""


CatalogWriter = Annotated[None, Depends(allow_catalog_write)]
