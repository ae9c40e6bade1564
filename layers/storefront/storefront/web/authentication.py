"""Who is calling: bearer tokens to principals, as FastAPI dependencies.

- :func:`optional_principal`: None without an Authorization header, 401 for a
  bad one (a bad token is never quietly treated as anonymous).
- :func:`require_principal` (:data:`Customer`): 401 without a valid token.
- :func:`require_admin` (:data:`AdminPrincipal`): 403 for a non-admin.

Each sets ``request.state.principal`` (None for an anonymous caller), and
:func:`optional_principal` answers from it once it is set, so the token is
verified once per request whoever asks first (the rate limiter, then the
route's own dependency). A 401 carries ``WWW-Authenticate: Bearer`` (RFC 6750), with
``error="invalid_token"`` and a short description when a token was given; the
token itself is never echoed, and only the refusal's class is logged.

**Revoked tokens** (:mod:`storefront.auth.revocation`). Whether a verified
token was revoked is read in the rate limiter's round trip, which runs before
any route (every metered route depends on it, ahead of its own dependencies):
the limiter GETs :func:`revocation_keys` with its script and hands the replies
to :func:`settle_revocation`, which answers 401 for a revoked token. When
Redis cannot tell, ``AUTH_REVOCATION_FAIL_CLOSED`` decides: 503 with
Retry-After (fail closed), or the token passes (fail open, counted by the
``RevocationCheckFailOpen`` metric). An answer given before the limiter ran
(a body that is not JSON) asks Redis itself: :func:`ensure_not_revoked`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from storefront.auth.errors import InvalidToken, KeysUnavailable
from storefront.auth.principal import Principal
from storefront.auth.revocation import TokenRevocations, Verdict
from storefront.errors import DomainError, Forbidden
from storefront.observability import logger, metrics
from storefront.web.dependencies import resources_of

if TYPE_CHECKING:
    from storefront.auth.tokens import TokenVerifier

__all__ = [
    "REVOCATION_FAIL_OPEN_METRIC",
    "AdminPrincipal",
    "Customer",
    "ensure_not_revoked",
    "optional_principal",
    "require_admin",
    "require_principal",
    "revocation_keys",
    "revocations",
    "settle_revocation",
]

KEYS_RETRY_AFTER_SECONDS = 5
REVOCATION_FAIL_OPEN_METRIC = "RevocationCheckFailOpen"
# request.state: the principal's token was found not revoked (or let pass).
_SETTLED = "revocation_settled"


class Unauthenticated(DomainError):
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str, challenge: str = "Bearer") -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": challenge}


class NotAnAdmin(Forbidden):
    def __init__(self) -> None:
        super().__init__("This route is for administrators.")
        self.headers = {"WWW-Authenticate": 'Bearer error="insufficient_scope"'}


class AuthenticationUnavailable(DomainError):
    status = 503
    title = "Service unavailable"

    def __init__(self, detail: str = "Tokens cannot be verified right now; retry shortly.") -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(KEYS_RETRY_AFTER_SECONDS)}


def token_revoked() -> Unauthenticated:
    challenge = 'Bearer error="invalid_token", error_description="token revoked"'
    return Unauthenticated("The token has been revoked.", challenge)


async def optional_principal(request: Request) -> Principal | None:
    if hasattr(request.state, "principal"):
        known: Principal | None = request.state.principal
        return known
    header = request.headers.get("authorization")
    if header is None:
        request.state.principal = None
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        logger.info("authorization refused", extra={"reason": "not_bearer"})
        raise Unauthenticated(
            "Send the token as 'Authorization: Bearer <token>'.",
            'Bearer error="invalid_request", error_description="Expected a bearer token"',
        )
    try:
        principal = await (await _verifier(request)).verify(token)
    except InvalidToken as refused:
        logger.info("token refused", extra={"reason": refused.reason})
        challenge = f'Bearer error="invalid_token", error_description="{refused.description}"'
        raise Unauthenticated(refused.description, challenge) from None
    except KeysUnavailable as error:
        logger.warning("token not verified: %s", error)
        raise AuthenticationUnavailable from None
    request.state.principal = principal
    return principal


async def require_principal(
    request: Request, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> Principal:
    if principal is None:
        raise Unauthenticated("This route needs a bearer token.")
    request.state.principal = principal
    return principal


async def require_admin(
    request: Request, principal: Annotated[Principal, Depends(require_principal)]
) -> Principal:
    request.state.principal = principal
    if not principal.is_admin:
        raise NotAnAdmin
    return principal


Customer = Annotated[Principal, Depends(require_principal)]
AdminPrincipal = Annotated[Principal, Depends(require_admin)]


async def revocations(request: Request) -> TokenRevocations:
    """The container's revocation store, on the resources' Redis client."""
    resources = resources_of(request)
    store: TokenRevocations | None = getattr(request.app.state, "token_revocations", None)
    # Rebuilt if the resources were closed and reopened, as the limiter is.
    if store is None or store.redis is not resources.redis:
        store = request.app.state.token_revocations = TokenRevocations(
            resources.redis, resources.settings
        )
    return store


async def revocation_keys(request: Request, principal: Principal | None) -> list[str]:
    """The keys the limiter reads for :func:`settle_revocation` (none for
    an anonymous caller)."""
    if principal is None:
        return []
    return (await revocations(request)).keys_of(principal)


async def settle_revocation(
    request: Request, principal: Principal, values: Mapping[str, bytes | None]
) -> None:
    """401 for a revoked token, and 503 (or a pass) when ``values`` lack a
    key: Redis could not be read."""
    verdict = (await revocations(request)).verdict(principal, values)
    await _settle(request, principal, verdict)


async def ensure_not_revoked(request: Request, principal: Principal) -> None:
    """:func:`settle_revocation`, asking Redis itself unless it was done
    for this request already."""
    if getattr(request.state, _SETTLED, False):
        return
    verdict = await (await revocations(request)).check(principal)
    await _settle(request, principal, verdict)


async def _settle(request: Request, principal: Principal, verdict: Verdict) -> None:
    if verdict is Verdict.REVOKED:
        logger.info("token refused", extra={"reason": "revoked"})
        raise token_revoked()
    if verdict is Verdict.UNKNOWN:
        policy = resources_of(request).settings.auth_revocation_fail_closed
        if policy == "always" or (policy == "admin" and principal.is_admin):
            logger.warning("revocation not checked (redis unavailable): token refused")
            raise AuthenticationUnavailable(
                "Whether the token was revoked cannot be checked right now; retry shortly."
            )
        logger.warning("revocation not checked (redis unavailable): token accepted")
        metrics.add_metric(name=REVOCATION_FAIL_OPEN_METRIC, unit="Count", value=1)
    setattr(request.state, _SETTLED, True)


async def _verifier(request: Request) -> TokenVerifier:
    """The app's verifier, built on the first token: one per container, so the
    secret is read and the JWKS cached once. Imported here, not at module
    level: PyJWT brings ``cryptography``, cold start that anonymous reads
    should not pay."""
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        from storefront.auth.tokens import TokenVerifier

        settings = resources_of(request).settings
        verifier = request.app.state.token_verifier = TokenVerifier.from_settings(settings)
    return verifier
