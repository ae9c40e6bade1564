"""The caller, as the API sees it after authentication."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """An authenticated subject: ``subject`` is the token's ``sub``; customers'
    orders are keyed by it, and it is never taken from a request body."""

    subject: str
    is_admin: bool = False
