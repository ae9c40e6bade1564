"""Free text PostgreSQL can store.

PostgreSQL's ``text`` and ``jsonb`` cannot hold U+0000 (NUL): a value with
one fails its statement, and the request would end in a 500. Every free-text
input (bodies and query parameters) is held to :data:`STORABLE_TEXT`, so such
a value is refused with a 422, and the OpenAPI schema says so.
"""

from __future__ import annotations

__all__ = ["STORABLE_TEXT"]

STORABLE_TEXT = r"^[^\x00]*$"
