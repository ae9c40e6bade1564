"""Who may use the admin routes. The seam the security issue fills in.

Every ``/admin`` route depends on :func:`require_admin` (the events router
declares it once, for all its routes). Until authentication lands, every
caller is allowed; the security work makes :func:`require_admin` reject
non-admins, and no route changes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

__all__ = ["Admin", "require_admin"]


async def require_admin() -> None:
    """Admin-only once authentication exists; open until then."""


Admin = Annotated[None, Depends(require_admin)]
