"""Bearer tokens (JWT) to principals, verified with PyJWT.

What the configuration accepts is all that is accepted:

- The algorithms are the configured ones (``AUTH_ALGORITHMS``), never what a
  token's header asks for, so ``alg: none`` is refused. HMAC and public-key
  algorithms are never configured together, and the key is chosen by the
  configuration's kind, not the token's: an HS256 token "signed" with the
  issuer's public key is refused as an algorithm we do not accept.
- ``exp``, ``iss``, ``aud``, ``sub`` and (``AUTH_REQUIRE_IAT``, on by default)
  ``iat`` must be present; ``exp``, ``nbf`` and ``iat`` are checked with a
  small leeway for clock skew (an ``iat`` in the future is refused); ``iss``
  and ``aud`` must match.
- A token may live ``AUTH_MAX_TOKEN_LIFETIME_SECONDS`` at most (``exp - iat``;
  without ``iat``, ``exp`` may be that far from now at most): a token that
  would be valid for ten years is refused, and revoking a subject's tokens
  needs keeping for that long only (:mod:`storefront.auth.revocation`).
- Keys: the issuer's JWKS for RS*/ES* (see :mod:`storefront.auth.jwks`), or a
  secret for HS* -- ``AUTH_HS256_SECRET`` locally, ``AUTH_SECRET_ARN`` (read
  once per container from Secrets Manager) when deployed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK
from jwt.exceptions import (
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidKeyError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from storefront.adapters.endpoints import given_or_stored_secret
from storefront.auth.errors import AuthConfigurationError, InvalidToken
from storefront.auth.jwks import JwksKeys, UnknownKey
from storefront.auth.principal import IssuedToken, Principal
from storefront.settings import Settings

__all__ = ["HMAC_ALGORITHMS", "TokenPolicy", "TokenVerifier", "principal_of"]

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
PUBLIC_KEY_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512"})
# HS256 with fewer bytes of secret than its digest can be brute-forced offline.
MIN_SECRET_BYTES = 32
# Real tokens are a few hundred bytes to ~2 kB; refuse before decoding megabytes.
MAX_TOKEN_LENGTH = 8192
# orders.customer_id holds the subject.
MAX_SUBJECT_LENGTH = 200
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")

# First match wins: InvalidSignatureError is a DecodeError, everything a PyJWTError.
_REFUSALS: tuple[tuple[type[Exception], str, str], ...] = (
    (ExpiredSignatureError, "expired", "The token has expired."),
    (ImmatureSignatureError, "not_yet_valid", "The token is not valid yet."),
    (InvalidIssuedAtError, "malformed", "The token's iat claim is not a number."),
    (InvalidAudienceError, "wrong_audience", "The token is meant for another audience."),
    (InvalidIssuerError, "wrong_issuer", "The token comes from another issuer."),
    (InvalidSignatureError, "bad_signature", "The token's signature is invalid."),
    (InvalidKeyError, "bad_signature", "The token's signature is invalid."),
    (InvalidAlgorithmError, "algorithm_refused", "The token's algorithm is not accepted."),
    (MissingRequiredClaimError, "missing_claim", "The token lacks a required claim."),
    (PyJWTError, "malformed", "The token is malformed."),
)


@dataclass(frozen=True)
class TokenPolicy:
    algorithms: tuple[str, ...]
    issuer: str
    audience: str
    leeway_seconds: int = 30
    admin_claim: str = "cognito:groups"
    admin_value: str = "admin"
    max_lifetime_seconds: int = 86_400
    require_iat: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenPolicy:
        algorithms = settings.auth_algorithm_names
        if set(algorithms) & HMAC_ALGORITHMS and set(algorithms) - HMAC_ALGORITHMS:
            raise AuthConfigurationError(
                "AUTH_ALGORITHMS mixes HMAC (HS*) and public-key (RS*/ES*) algorithms; choose one"
            )
        if not settings.auth_issuer or not settings.auth_audience:
            raise AuthConfigurationError("set AUTH_ISSUER and AUTH_AUDIENCE to verify tokens")
        return cls(
            algorithms=algorithms,
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            leeway_seconds=settings.auth_leeway_seconds,
            admin_claim=settings.auth_admin_claim,
            admin_value=settings.auth_admin_value,
            max_lifetime_seconds=settings.auth_max_token_lifetime_seconds,
            require_iat=settings.auth_require_iat,
        )

    @property
    def uses_hmac(self) -> bool:
        return set(self.algorithms) <= HMAC_ALGORITHMS

    @property
    def required_claims(self) -> list[str]:
        return [*REQUIRED_CLAIMS, "iat"] if self.require_iat else list(REQUIRED_CLAIMS)


class TokenVerifier:
    """Verifies tokens for one container: holds the secret or the cached JWKS."""

    def __init__(
        self, policy: TokenPolicy, *, secret: str | None = None, jwks: JwksKeys | None = None
    ) -> None:
        if policy.uses_hmac and secret is None:
            raise AuthConfigurationError("HS* algorithms need a secret")
        if not policy.uses_hmac and jwks is None:
            raise AuthConfigurationError("RS*/ES* algorithms need a JWKS")
        if secret is not None and len(secret.encode()) < MIN_SECRET_BYTES:
            raise AuthConfigurationError(f"the HS* secret needs {MIN_SECRET_BYTES}+ bytes")
        self.policy = policy
        self._secret = secret
        self._jwks = jwks

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        policy = TokenPolicy.from_settings(settings)
        if policy.uses_hmac:
            return cls(policy, secret=_hmac_secret(settings))
        if not settings.auth_jwks_url:
            raise AuthConfigurationError(f"set AUTH_JWKS_URL for {','.join(policy.algorithms)}")
        return cls(policy, jwks=JwksKeys(settings.auth_jwks_url))

    async def verify(self, token: str) -> Principal:
        """The token's principal; :class:`InvalidToken` when it proves nothing."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("malformed", "The token is malformed.")
        key = await self._key_for(_header_of(token))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self.policy.algorithms),
                audience=self.policy.audience,
                issuer=self.policy.issuer,
                leeway=self.policy.leeway_seconds,
                options={
                    "require": self.policy.required_claims,
                    "enforce_minimum_key_length": True,
                },
            )
        except PyJWTError as error:
            raise _refusal(error) from None
        _check_lifetime(claims, self.policy, time.time())
        return principal_of(claims, self.policy)

    async def _key_for(self, header: Mapping[str, Any]) -> str | PyJWK:
        if header.get("alg") not in self.policy.algorithms:
            raise InvalidToken("algorithm_refused", "The token's algorithm is not accepted.")
        if self._secret is not None:
            return self._secret
        assert self._jwks is not None
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("malformed", "The token names no signing key.")
        try:
            return await self._jwks.key_for(kid)
        except UnknownKey:
            raise InvalidToken("unknown_key", "The token's signing key is unknown.") from None


def principal_of(claims: Mapping[str, Any], policy: TokenPolicy) -> Principal:
    subject = claims.get("sub")
    if (
        not isinstance(subject, str)
        or not subject
        or len(subject) > MAX_SUBJECT_LENGTH
        # The subject keys a customer's orders: PostgreSQL text holds no NUL.
        or "\x00" in subject
    ):
        raise InvalidToken("bad_subject", "The token's subject is invalid.")
    return Principal(
        subject,
        is_admin=_grants(claims.get(policy.admin_claim), policy.admin_value),
        token=_issued_token(claims),
    )


def _issued_token(claims: Mapping[str, Any]) -> IssuedToken:
    # PyJWT has checked exp and iat are numbers (iat when present) and jti a
    # string (when present).
    issued_at = claims.get("iat")
    token_id = claims.get("jti")
    return IssuedToken(
        expires_at=int(claims["exp"]),
        issued_at=None if issued_at is None else int(issued_at),
        token_id=token_id if isinstance(token_id, str) and token_id else None,
    )


def _check_lifetime(claims: Mapping[str, Any], policy: TokenPolicy, now: float) -> None:
    """Refuse a token that lives longer than the policy's maximum."""
    expires_at = int(claims["exp"])
    issued_at = claims.get("iat")
    if issued_at is not None:
        too_long = expires_at - int(issued_at) > policy.max_lifetime_seconds
    else:
        too_long = expires_at - now > policy.max_lifetime_seconds + policy.leeway_seconds
    if too_long:
        raise InvalidToken(
            "lifetime_too_long",
            f"The token lives longer than the {policy.max_lifetime_seconds} s allowed (exp - iat).",
        )


def _grants(claim: object, value: str) -> bool:
    # Cognito groups are a list; a string claim is a space-separated list, as
    # OAuth's "scope" is ("role": "admin" works too).
    if isinstance(claim, list):
        return value in claim
    return isinstance(claim, str) and value in claim.split()


def _header_of(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except PyJWTError:
        raise InvalidToken("malformed", "The token is malformed.") from None


def _refusal(error: PyJWTError) -> InvalidToken:
    # The claim's name is ours (the required list), never the token's text.
    if isinstance(error, MissingRequiredClaimError):
        return InvalidToken("missing_claim", f"The token lacks the {error.claim} claim.")
    if isinstance(error, ImmatureSignatureError) and "(iat)" in str(error):
        return InvalidToken("issued_in_future", "The token's iat is in the future.")
    for kind, reason, description in _REFUSALS:
        if isinstance(error, kind):
            return InvalidToken(reason, description)
    return InvalidToken("malformed", "The token is malformed.")


def _hmac_secret(settings: Settings) -> str:
    return given_or_stored_secret(
        settings.auth_hs256_secret,
        settings.auth_secret_arn,
        names=("AUTH_HS256_SECRET", "AUTH_SECRET_ARN"),
        error=AuthConfigurationError,
    )
