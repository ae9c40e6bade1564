"""Who may use the admin routes: administrators only.

Every ``/admin`` route depends on :func:`require_admin` (the events router
declares it once, for all its routes): 401 without a valid token, 403 for a
caller who is not an admin.
"""

from __future__ import annotations

from storefront.web.authentication import AdminPrincipal, require_admin

__all__ = ["Admin", "require_admin"]

Admin = AdminPrincipal
