"""Revoked tokens, kept in Redis only as long as the tokens could still be used.

Two kinds of keys, both named by a digest (no subject or ``jti`` in a key name):

- **One token** (``POST /auth/logout``): ``revoked-token:<digest of sub and
  jti>``, set to ``1`` until the token expires (``exp`` plus the leeway the
  verifier grants). A token without ``jti`` is known by its ``iat`` instead,
  so logging it out also revokes any other token of the same subject issued
  in the same second; a token with neither cannot be revoked alone.
- **Every token of a subject issued so far** (``POST /admin/customers/{sub}/
  revoke-tokens``): ``revoked-before:<digest of sub>``, set to the time of the
  revocation (whole seconds), kept for the longest a token may live (and the
  leeway): by then every token issued before it has expired. A token whose
  ``iat`` is at or before that time is revoked -- one issued in the same
  second as the revocation too, as nothing tells it apart from one issued just
  before; a token without ``iat`` (``AUTH_REQUIRE_IAT`` off) is revoked while
  the key lives.

Reading them costs no round trip of its own on the hot path: the rate limiter
GETs :meth:`TokenRevocations.keys_of` in its pipeline
(:mod:`storefront.web.rate_limits`) and :meth:`TokenRevocations.verdict`
decides from the replies. Each key is read by a GET of its own, so they need
no common hash tag on Redis Cluster (a pipeline without a transaction may span
slots). :meth:`TokenRevocations.check` is the same read on its own, for the
rare answer given before the limiter ran.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from enum import Enum

from storefront.adapters.redis import REDIS_FAILURES, RedisClient, caller_digest
from storefront.auth.principal import IssuedToken, Principal
from storefront.settings import Settings

__all__ = ["NotRevocable", "TokenRevocations", "Verdict"]


class Verdict(Enum):
    VALID = "valid"
    REVOKED = "revoked"
    # Redis did not answer (down, the breaker open, a GET failed).
    UNKNOWN = "unknown"


class NotRevocable(Exception):
    """A token with neither ``jti`` nor ``iat``: nothing names it alone."""


class TokenRevocations:
    def __init__(self, redis: RedisClient, settings: Settings) -> None:
        self.redis = redis
        self._prefix = settings.redis_key_prefix
        self._max_lifetime = settings.auth_max_token_lifetime_seconds
        self._leeway = settings.auth_leeway_seconds

    def keys_of(self, principal: Principal) -> list[str]:
        """The keys that say whether the principal's token was revoked."""
        token = _token_of(principal)
        own = self._token_key(principal.subject, token)
        subject = self._subject_key(principal.subject)
        return [subject] if own is None else [own, subject]

    def verdict(self, principal: Principal, values: Mapping[str, bytes | None]) -> Verdict:
        """The token's fate from the values of :meth:`keys_of` that were read
        (a key missing from ``values`` could not be read)."""
        keys = self.keys_of(principal)
        if any(key not in values for key in keys):
            return Verdict.UNKNOWN
        own_key = keys[0] if len(keys) == 2 else None
        if own_key is not None and values[own_key] is not None:
            return Verdict.REVOKED
        revoked_before = values[self._subject_key(principal.subject)]
        if revoked_before is not None and _issued_by(_token_of(principal), revoked_before):
            return Verdict.REVOKED
        return Verdict.VALID

    async def check(self, principal: Principal) -> Verdict:
        """:meth:`verdict` with a round trip of its own."""
        keys = self.keys_of(principal)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.get(key)
                replies: Sequence[object] = await pipe.execute(raise_on_error=False)
        except REDIS_FAILURES:
            return Verdict.UNKNOWN
        values = {
            key: reply
            for key, reply in zip(keys, replies, strict=True)
            if reply is None or isinstance(reply, bytes)
        }
        return self.verdict(principal, values)

    async def revoke_token(self, principal: Principal) -> None:
        """Revoke the principal's own token until it expires
        (:class:`NotRevocable` for a token with neither ``jti`` nor ``iat``)."""
        token = _token_of(principal)
        key = self._token_key(principal.subject, token)
        if key is None:
            raise NotRevocable
        remaining = token.expires_at + self._leeway - int(time.time())
        await self.redis.set(key, b"1", ex=max(1, remaining))

    async def revoke_subject(self, subject: str) -> int:
        """Revoke every token of ``subject`` issued until now; the time (s)
        tokens must be issued after to be valid again."""
        now = int(time.time())
        await self.redis.set(
            self._subject_key(subject), str(now), ex=self._max_lifetime + self._leeway
        )
        return now

    def _token_key(self, subject: str, token: IssuedToken) -> str | None:
        if token.token_id is not None:
            name = f"jti:{token.token_id}"
        elif token.issued_at is not None:
            name = f"iat:{token.issued_at}"
        else:
            return None
        # A subject holds no NUL (storefront.auth.tokens refuses it), so no
        # two (subject, name) pairs digest the same text.
        digest = caller_digest("\x00".join(("token", subject, name)))
        return f"{self._prefix}revoked-token:{digest}"

    def _subject_key(self, subject: str) -> str:
        digest = caller_digest("\x00".join(("subject", subject)))
        return f"{self._prefix}revoked-before:{digest}"


def _token_of(principal: Principal) -> IssuedToken:
    if principal.token is None:
        raise ValueError("a principal without its token cannot be checked for revocation")
    return principal.token


def _issued_by(token: IssuedToken, revoked_before: bytes) -> bool:
    """Whether the token was issued at or before the revocation's time."""
    if token.issued_at is None:
        return True
    try:
        return token.issued_at <= int(revoked_before)
    except ValueError:  # not what revoke_subject writes: count it as revoked
        return True
