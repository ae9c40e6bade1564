"""Hardening over ASGI: body size cap, security headers on every answer, CORS allow-list."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from storefront import wiring
from storefront.resources import Resources
from storefront.settings import Settings
from storefront.web.app import create_api
from storefront.web.hardening import SECURITY_HEADERS
from tests.integration.conftest import asgi_client

PROBLEM = "application/problem+json"
SHOP = "https://shop.example"
MAX_BODY_BYTES = 1024


@pytest.fixture
async def hardened(settings: Settings) -> AsyncIterator[Resources]:
    resources = Resources.from_settings(
        settings.model_copy(
            update={
                "max_body_bytes": MAX_BODY_BYTES,
                "cors_allow_origins": f"{SHOP}, https://admin.shop.example",
            }
        )
    )
    yield resources
    await resources.close()


@pytest.fixture
def failing_router() -> APIRouter:
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug, with a secret: hunter2")

    return router


@pytest.fixture
async def client(
    hardened: Resources, failing_router: APIRouter, admin_headers: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    app = wiring.catalog_app(lambda: hardened)
    app.include_router(failing_router)
    async with asgi_client(app, admin_headers) as client:
        yield client


def assert_hardened(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.status_code, name)


async def test_security_headers_on_success_and_error_answers(client: httpx.AsyncClient) -> None:
    answers = {
        200: await client.get("/products"),
        404: await client.get("/no-such-route"),
        422: await client.get("/products", params={"limit": 0}),
        500: await client.get("/boom"),
    }

    for status, response in answers.items():
        assert response.status_code == status
        assert_hardened(response)
    assert "hunter2" not in answers[500].text
    # The route's own caching policy is left as it is.
    assert answers[200].headers["cache-control"].startswith("public, max-age=0")


async def test_security_headers_when_the_whole_app_fails(hardened: Resources) -> None:
    """Even the last line of defence's 500 (RequestContextMiddleware) is hardened."""

    def no_resources() -> Resources:
        raise RuntimeError("no resources")

    router = APIRouter()

    @router.get("/anything")
    async def anything() -> None:
        return None

    app: FastAPI = create_api("broken", [router], no_resources)
    async with asgi_client(app) as client:
        response = await client.get("/anything")

    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert_hardened(response)


async def test_a_declared_oversize_body_is_refused_before_any_route(
    client: httpx.AsyncClient,
) -> None:
    body = b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}'

    response = await client.post(
        "/categories", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["title"] == "Content too large"
    assert_hardened(response)
    assert (await client.get("/categories")).json() == []


async def test_a_streamed_oversize_body_is_refused_as_it_arrives(
    client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(4):
            yield b"x" * (MAX_BODY_BYTES // 2)
        yield b'"}'

    response = await client.post(
        "/categories", content=chunks(), headers={"content-type": "application/json"}
    )

    assert "content-length" not in response.request.headers  # chunked, nothing declared
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["title"] == "Content too large"
    assert (await client.get("/categories")).json() == []


async def test_a_body_under_the_cap_goes_through(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": '
        yield b'"Tea"}'

    response = await client.post(
        "/categories", content=chunks(), headers={"content-type": "application/json"}
    )

    assert response.status_code == 201


async def test_cors_preflight_is_allowed_for_a_configured_origin_only(
    client: httpx.AsyncClient,
) -> None:
    def preflight(origin: str) -> dict[str, str]:
        return {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        }

    allowed = await client.options("/products", headers=preflight(SHOP))
    refused = await client.options("/products", headers=preflight("https://evil.example"))
    simple = await client.get("/products", headers={"Origin": SHOP})
    foreign = await client.get("/products", headers={"Origin": "https://evil.example"})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in allowed.headers
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert simple.headers["access-control-allow-origin"] == SHOP
    assert "ratelimit-remaining" in simple.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in foreign.headers
    assert_hardened(allowed)
