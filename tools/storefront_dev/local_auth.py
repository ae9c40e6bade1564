"""Tokens for the local stack: its HS256 secret and ``storefront token``.

``make run`` configures its functions for HS256 with a secret generated once
under ``.local/`` (or ``AUTH_HS256_SECRET`` when set), and ``storefront token``
signs with the same secret, so a minted token works against the local stack
and nowhere else. Pointing the configuration at a real issuer
(``AUTH_JWKS_URL``) or at a deployed secret (``AUTH_SECRET_ARN``) turns
minting off: tokens then come from that issuer.

Development tooling: this module never ships in a layer.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from storefront.settings import Settings

__all__ = [
    "LOCAL_AUDIENCE",
    "LOCAL_ISSUER",
    "LocalAuth",
    "NotMintable",
    "ensure_local_secret",
    "local_auth",
    "local_auth_environment",
    "mint_token",
]

LOCAL_ISSUER = "storefront-local"
LOCAL_AUDIENCE = "storefront"
SECRET_FILE = Path(".local") / "auth-secret"
DEFAULT_TTL_SECONDS = 3600


class NotMintable(Exception):
    """The configuration trusts a real issuer, or the token asked for would be
    refused; the message says which."""


@dataclass(frozen=True)
class LocalAuth:
    secret: str
    issuer: str
    audience: str
    admin_claim: str
    admin_value: str
    # The longest lifetime the API accepts (AUTH_MAX_TOKEN_LIFETIME_SECONDS).
    max_lifetime_seconds: int = 86_400

    def settings(self) -> dict[str, Any]:
        """The ``Settings`` fields that verify these tokens (``Settings(**auth.settings())``)."""
        return {
            "auth_algorithms": "HS256",
            "auth_hs256_secret": self.secret,
            "auth_issuer": self.issuer,
            "auth_audience": self.audience,
            "auth_admin_claim": self.admin_claim,
            "auth_admin_value": self.admin_value,
        }

    def environment(self) -> dict[str, str]:
        """The same, as the environment variables of the local stack's functions."""
        return {name.upper(): str(value) for name, value in self.settings().items()}


def ensure_local_secret(root: Path) -> str:
    """The secret in ``root/.local/auth-secret``, created on first use (mode 0600)."""
    path = root / SECRET_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two commands starting at once never overwrite each other's secret.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(48) + "\n")
    return path.read_text().strip()


def local_auth(settings: Settings, root: Path) -> LocalAuth:
    """The local stack's token configuration; :class:`NotMintable` when the
    settings point at a real issuer or a deployed secret."""
    if settings.auth_jwks_url:
        raise NotMintable(
            f"AUTH_JWKS_URL is set ({settings.auth_jwks_url}): tokens come from that issuer"
        )
    if settings.auth_secret_arn and not settings.auth_hs256_secret:
        raise NotMintable("AUTH_SECRET_ARN is set: that deployment's tokens are not minted here")
    return LocalAuth(
        secret=settings.auth_hs256_secret or ensure_local_secret(root),
        issuer=settings.auth_issuer or LOCAL_ISSUER,
        audience=settings.auth_audience or LOCAL_AUDIENCE,
        admin_claim=settings.auth_admin_claim,
        admin_value=settings.auth_admin_value,
        max_lifetime_seconds=settings.auth_max_token_lifetime_seconds,
    )


def local_auth_environment(settings: Settings, root: Path) -> dict[str, str]:
    """The functions' AUTH_* variables; none when a real issuer is configured
    (the functions then inherit the developer's own AUTH_* variables)."""
    try:
        return local_auth(settings, root).environment()
    except NotMintable:
        return {}


def mint_token(
    auth: LocalAuth,
    subject: str,
    *,
    admin: bool = False,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    extra_claims: Mapping[str, object] | None = None,
) -> str:
    """A token as the API accepts it: ``iat`` now, a ``jti`` of its own (so
    ``POST /auth/logout`` revokes this token alone), and ``ttl_seconds`` of
    life, which must fit ``AUTH_MAX_TOKEN_LIFETIME_SECONDS``."""
    if ttl_seconds > auth.max_lifetime_seconds:
        raise NotMintable(
            f"a lifetime of {ttl_seconds} s is over AUTH_MAX_TOKEN_LIFETIME_SECONDS "
            f"({auth.max_lifetime_seconds} s): the API would refuse the token"
        )
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": subject,
        "iss": auth.issuer,
        "aud": auth.audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    if admin:
        claims[auth.admin_claim] = [auth.admin_value]
    claims.update(extra_claims or {})
    return jwt.encode(claims, auth.secret, algorithm="HS256")
