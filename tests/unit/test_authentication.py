"""The authentication dependencies over HTTP: 401/403/503 problem+json with
WWW-Authenticate, nothing of the token echoed or logged, and the principal on
``request.state`` for the rate limiter."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request

from storefront.auth.principal import Principal
from storefront.resources import Resources
from storefront.settings import Settings
from storefront.web.authentication import AdminPrincipal, Customer, optional_principal
from storefront.web.problems import install_problem_handlers
from storefront_dev.embedded import free_port
from tests.unit.issuer import (
    AUDIENCE,
    ISSUER,
    REFUSED_CASES,
    JwksServer,
    Keys,
    claims,
    jwks_server,
    refused_tokens,
    rsa_key,
)

PROBLEM = "application/problem+json"

router = APIRouter()


def seen(request: Request) -> dict[str, object]:
    principal = request.state.principal
    return {"subject": principal.subject if principal else None}


@router.get("/maybe")
async def maybe(
    request: Request, caller: Annotated[Principal | None, Depends(optional_principal)]
) -> dict[str, object]:
    return seen(request)


@router.get("/mine")
async def mine(request: Request, caller: Customer) -> dict[str, object]:
    return seen(request)


@router.get("/admin")
async def admin(request: Request, caller: AdminPrincipal) -> dict[str, object]:
    return seen(request) | {"admin": caller.is_admin}


@pytest.fixture(autouse=True)
def no_auth_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("AUTH_")]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(rsa_key("rsa-1"), rsa_key("unused"), rsa_key("rsa-1"), rsa_key("ghost"))


@pytest.fixture
def issuer(keys: Keys) -> Iterator[JwksServer]:
    with jwks_server(keys.rsa) as server:
        yield server


async def client_for(jwks_url: str) -> httpx.AsyncClient:
    settings = Settings(
        auth_algorithms="RS256",
        auth_jwks_url=jwks_url,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
    )
    # The dependencies alone, with problem+json: no other middleware or
    # dependency (rate limits) and no PostgreSQL or Redis, which stay unopened.
    app = FastAPI()
    app.state.resources = lambda: Resources.from_settings(settings)
    install_problem_handlers(app)
    app.include_router(router)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def client(issuer: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    async with await client_for(issuer.url) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_missing_token_is_401_with_a_bare_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/mine")

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["title"] == "Unauthorized"


@pytest.mark.parametrize("header", ["Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer   ", "Token x"])
async def test_an_authorization_header_without_a_bearer_token_is_401(
    client: httpx.AsyncClient, header: str
) -> None:
    for path in ("/mine", "/maybe"):
        response = await client.get(path, headers={"Authorization": header})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith('Bearer error="invalid_request"')


@pytest.mark.parametrize("case", REFUSED_CASES)
async def test_every_refused_token_is_a_401_problem(
    client: httpx.AsyncClient, keys: Keys, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    token, reason = refused_tokens(keys)[case]
    caplog.set_level(logging.INFO)

    # A bad token is refused even where a token is optional: never quietly anonymous.
    for path in ("/mine", "/maybe"):
        response = await client.get(path, headers=bearer(token))

        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == PROBLEM
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith('Bearer error="invalid_token", error_description="')
        assert token not in response.text
        assert token not in challenge
        assert "Traceback" not in response.text
    # The reason's class only, at INFO; nothing of the token.
    assert [record.reason for record in caplog.records if hasattr(record, "reason")] == [
        reason,
        reason,
    ]
    assert all(token not in str(record.__dict__) for record in caplog.records)


async def test_the_principal_is_on_request_state(client: httpx.AsyncClient, keys: Keys) -> None:
    token = keys.rsa.sign(claims(sub="carol"))

    assert (await client.get("/maybe")).json() == {"subject": None}
    assert (await client.get("/maybe", headers=bearer(token))).json() == {"subject": "carol"}
    assert (await client.get("/mine", headers=bearer(token))).json() == {"subject": "carol"}


async def test_admin_routes_answer_403_to_customers(client: httpx.AsyncClient, keys: Keys) -> None:
    customer = await client.get("/admin", headers=bearer(keys.rsa.sign(claims())))
    admin = await client.get(
        "/admin", headers=bearer(keys.rsa.sign(claims(**{"cognito:groups": ["admin"]})))
    )
    anonymous = await client.get("/admin")

    assert customer.status_code == 403
    assert customer.headers["content-type"] == PROBLEM
    assert customer.headers["www-authenticate"] == 'Bearer error="insufficient_scope"'
    assert admin.status_code == 200
    assert admin.json() == {"subject": "alice", "admin": True}
    assert anonymous.status_code == 401


async def test_an_unreachable_issuer_is_503_not_401(keys: Keys) -> None:
    async with await client_for(f"http://127.0.0.1:{free_port()}/jwks.json") as client:
        response = await client.get("/mine", headers=bearer(keys.rsa.sign(claims())))

    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    assert int(response.headers["retry-after"]) > 0
