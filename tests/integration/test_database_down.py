"""PostgreSQL unreachable: 503 problem+json with Retry-After, never a stack trace."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from storefront import wiring
from storefront.resources import Resources
from storefront.settings import Settings
from storefront_dev.embedded import free_port
from tests.integration.conftest import asgi_client


@pytest.fixture
async def client_without_database(
    settings: Settings, admin_headers: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/storefront"
    resources = Resources.from_settings(
        settings.model_copy(update={"database_url": nowhere, "database_connect_timeout": 1.0})
    )
    async with asgi_client(wiring.catalog_app(lambda: resources), admin_headers) as client:
        yield client
    await resources.close()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/products/0190f0e0-0000-7000-8000-000000000000", None),
        ("GET", "/products?q=unreachable", None),
        ("POST", "/products", {"sku": "S", "name": "N", "price": "1.00"}),
        ("GET", "/categories", None),
    ],
)
async def test_database_down_answers_503(
    client_without_database: httpx.AsyncClient, method: str, path: str, body: object
) -> None:
    response = await client_without_database.request(method, path, json=body)

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["detail"] == "The database is unreachable; retry shortly."
    assert "Traceback" not in response.text
    assert "asyncpg" not in response.text.lower()


async def test_readiness_names_the_database(client_without_database: httpx.AsyncClient) -> None:
    live = await client_without_database.get("/health")
    ready = await client_without_database.get("/health/ready")

    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["checks"]["postgres"]["ok"] is False
    assert ready.json()["checks"]["redis"]["ok"] is True
    assert "postgres" in ready.json()["detail"]
