"""Who is calling: bearer tokens to principals, as FastAPI dependencies.

- :func:`optional_principal`: None without an Authorization header, 401 for a
  bad one (a bad token is never quietly treated as anonymous).
- :func:`require_principal` (:data:`Customer`): 401 without a valid token.
- :func:`require_admin` (:data:`AdminPrincipal`): 403 for a non-admin.

Each sets ``request.state.principal`` (None for an anonymous caller), which the
rate limiter reads. A 401 carries ``WWW-Authenticate: Bearer`` (RFC 6750), with
``error="invalid_token"`` and a short description when a token was given; the
token itself is never echoed, and only the refusal's class is logged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from storefront.auth.errors import InvalidToken, KeysUnavailable
from storefront.auth.principal import Principal
from storefront.errors import DomainError, Forbidden
from storefront.observability import logger
from storefront.web.dependencies import get_resources

if TYPE_CHECKING:
    from storefront.auth.tokens import TokenVerifier

__all__ = [
    "AdminPrincipal",
    "Customer",
    "optional_principal",
    "require_admin",
    "require_principal",
]

KEYS_RETRY_AFTER_SECONDS = 5


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

    def __init__(self) -> None:
        super().__init__("Tokens cannot be verified right now; retry shortly.")
        self.headers = {"Retry-After": str(KEYS_RETRY_AFTER_SECONDS)}


async def optional_principal(request: Request) -> Principal | None:
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


async def _verifier(request: Request) -> TokenVerifier:
    """The app's verifier, built on the first token: one per container, so the
    secret is read and the JWKS cached once. Imported here, not at module
    level: PyJWT brings ``cryptography``, cold start that anonymous reads
    should not pay."""
    verifier: TokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        from storefront.auth.tokens import TokenVerifier

        settings = (await get_resources(request)).settings
        verifier = request.app.state.token_verifier = TokenVerifier.from_settings(settings)
    return verifier
