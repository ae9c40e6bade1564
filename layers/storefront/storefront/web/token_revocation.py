"""Routes that revoke tokens: a caller's own (logout), or all of a subject's (admin).

Served by the orders function (:func:`storefront.wiring.orders_app`), beside
the other routes about customers and administration; the check that refuses
a revoked token runs in every function (:mod:`storefront.web.authentication`).
Both answer 204; a Redis that cannot record the revocation answers 503 with
Retry-After, never a 204 that revoked nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status

from storefront.adapters.redis import REDIS_FAILURES
from storefront.auth.revocation import NotRevocable
from storefront.errors import DomainError
from storefront.observability import logger
from storefront.web.admin import Admin
from storefront.web.authentication import AuthenticationUnavailable, Customer, revocations
from storefront.web.problems import documented

__all__ = ["router"]

router = APIRouter(tags=["auth"])

# As storefront.auth.tokens accepts a subject: 1 to 200 characters, no NUL.
Subject = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^\x00]+$")]

_UNAVAILABLE = documented(
    _503="Redis is unreachable: nothing was revoked; retry after Retry-After seconds"
)


class TokenNotRevocable(DomainError):
    status = 400
    title = "Bad request"

    def __init__(self) -> None:
        super().__init__(
            "The token has neither jti nor iat, so it cannot be revoked alone; it stays "
            "valid until it expires, or an admin revokes all of its subject's tokens."
        )


def _not_recorded() -> AuthenticationUnavailable:
    return AuthenticationUnavailable("The revocation cannot be recorded right now; retry shortly.")


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Log out: revoke the token of this request",
    description=(
        "The bearer token sent with this request is refused (401) from now until it "
        "expires; the subject's other tokens stay valid. Identified by its jti (by its "
        "iat when it has none: tokens of the subject issued in the same second go too)."
    ),
    responses=_UNAVAILABLE | documented(_400="The token has neither jti nor iat"),
)
async def logout(request: Request, caller: Customer) -> Response:
    try:
        await (await revocations(request)).revoke_token(caller)
    except NotRevocable:
        raise TokenNotRevocable from None
    except REDIS_FAILURES as error:
        logger.warning("logout not recorded (redis unavailable): %s", type(error).__name__)
        raise _not_recorded() from None
    logger.info("token revoked", extra={"reason": "logout"})
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/admin/customers/{sub}/revoke-tokens",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke every token issued to a subject until now",
    description=(
        "Every token of the subject `sub` issued until now (its iat at or before this "
        "second) is refused (401) from now on; tokens issued afterwards are valid. For "
        "Cognito users, also call AdminUserGlobalSignOut so no new tokens are minted "
        "from their refresh tokens."
    ),
    responses=_UNAVAILABLE,
)
async def revoke_subject_tokens(request: Request, sub: Subject, admin: Admin) -> Response:
    try:
        revoked_at = await (await revocations(request)).revoke_subject(sub)
    except REDIS_FAILURES as error:
        logger.warning("revocation not recorded (redis unavailable): %s", type(error).__name__)
        raise _not_recorded() from None
    logger.info("tokens revoked", extra={"reason": "admin", "revoked_at": revoked_at})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
