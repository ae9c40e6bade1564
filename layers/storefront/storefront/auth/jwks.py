"""Signing keys from an issuer's JWKS (Cognito or any OIDC issuer).

PyJWT's ``PyJWKClient`` does the fetching, parsing and caching: the key set is
kept for ``lifespan`` seconds per container, and a token whose ``kid`` is not in
it refreshes the set once -- at most once per ``cooldown`` seconds, so a flood
of tokens with made-up kids costs the issuer one request per cooldown, not one
per token. The client is synchronous (urllib), so a fetch runs in a worker
thread; a key already in the cached set is found here without one, which is
what nearly every request needs.
"""

from __future__ import annotations

import asyncio

from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError, PyJWKSetError

from storefront.auth.errors import KeysUnavailable

__all__ = ["JwksKeys", "UnknownKey"]

# Cognito rotates keys rarely and publishes a new one before signing with it;
# an hour bounds how long a key removed from the set is still accepted.
DEFAULT_LIFESPAN_SECONDS = 3600.0
DEFAULT_COOLDOWN_SECONDS = 30.0
# A function waiting on the issuer holds its request: fail fast instead.
FETCH_TIMEOUT_SECONDS = 3.0


class UnknownKey(Exception):
    """No signing key in the issuer's set has this kid, even after a refresh."""


class JwksKeys:
    def __init__(
        self,
        url: str,
        *,
        lifespan: float = DEFAULT_LIFESPAN_SECONDS,
        cooldown: float = DEFAULT_COOLDOWN_SECONDS,
        timeout: float = FETCH_TIMEOUT_SECONDS,
    ) -> None:
        self._client = PyJWKClient(
            url,
            cache_jwk_set=True,
            lifespan=lifespan,
            cooldown_duration=cooldown,
            timeout=timeout,
        )

    async def key_for(self, kid: str) -> PyJWK:
        cached = self._cached(kid)
        if cached is not None:
            return cached
        try:
            return await asyncio.to_thread(self._client.get_signing_key, kid)
        except PyJWKClientConnectionError as error:
            raise KeysUnavailable("the JWKS endpoint did not answer") from error
        except PyJWKSetError as error:
            raise KeysUnavailable("the JWKS endpoint returned no usable keys") from error
        except PyJWKClientError as error:
            if self._has_key_set():
                raise UnknownKey from error
            raise KeysUnavailable("the JWKS endpoint returned no key set") from error

    def _cached(self, kid: str) -> PyJWK | None:
        cache = self._client.jwk_set_cache
        key_set = cache.get() if cache is not None else None
        if key_set is None:
            return None
        for key in key_set.keys:
            if key.key_id == kid and key.public_key_use in ("sig", None):
                return key
        return None

    def _has_key_set(self) -> bool:
        cache = self._client.jwk_set_cache
        return cache is not None and cache.get() is not None
