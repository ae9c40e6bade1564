"""The caller, as the API sees it after authentication."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class IssuedToken:
    """What revocation needs to know of the token a principal came with.

    ``token_id`` is the ``jti`` claim (None when the issuer sets none);
    ``issued_at`` and ``expires_at`` are ``iat`` and ``exp`` in seconds since
    the epoch (``issued_at`` None only when ``AUTH_REQUIRE_IAT`` is off).
    """

    expires_at: int
    issued_at: int | None = None
    token_id: str | None = None


@dataclass(frozen=True)
class Principal:
    """An authenticated subject: ``subject`` is the token's ``sub``; customers'
    orders are keyed by it, and it is never taken from a request body.

    ``token`` is the token it was read from (None for a principal made
    otherwise, as tests do). It is not part of equality: two principals are
    the same caller with the same rights whatever token each came with.
    """

    subject: str
    is_admin: bool = False
    token: IssuedToken | None = field(default=None, compare=False)
