"""POST /orders with an Idempotency-Key: retries never create a second order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import text

from storefront.resources import Resources
from tests.integration.conftest import create_product

Headers = Callable[[str], dict[str, str]]


@pytest.fixture(autouse=True)
async def no_keys(resources: Resources) -> None:
    async with resources.engine.begin() as connection:
        await connection.execute(text("TRUNCATE idempotency_keys"))


async def counts(resources: Resources) -> tuple[int, int]:
    async with resources.engine.connect() as connection:
        orders = await connection.scalar(text("SELECT count(*) FROM orders"))
        events = await connection.scalar(
            text("SELECT count(*) FROM outbox WHERE event_type = 'OrderPlaced'")
        )
    return int(orders or 0), int(events or 0)


@pytest.fixture
async def order_body(client: httpx.AsyncClient) -> dict[str, object]:
    product = await create_product(client)
    return {"items": [{"product_id": product["id"], "quantity": 1}]}


async def test_a_retry_replays_the_original_answer(
    orders_client: httpx.AsyncClient,
    resources: Resources,
    order_body: dict[str, object],
    customer_headers: Headers,
) -> None:
    headers = customer_headers("alice") | {"Idempotency-Key": "retry-1"}
    first = await orders_client.post("/orders", json=order_body, headers=headers)
    second = await orders_client.post("/orders", json=order_body, headers=headers)

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await counts(resources) == (1, 1)


async def test_the_same_key_with_another_body_is_422(
    orders_client: httpx.AsyncClient,
    resources: Resources,
    order_body: dict[str, object],
    customer_headers: Headers,
) -> None:
    headers = customer_headers("alice") | {"Idempotency-Key": "retry-2"}
    await orders_client.post("/orders", json=order_body, headers=headers)
    other = {"items": [order_body["items"][0] | {"quantity": 2}]}  # type: ignore[index]

    response = await orders_client.post("/orders", json=other, headers=headers)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert await counts(resources) == (1, 1)


async def test_twenty_concurrent_requests_with_one_key_make_one_order(
    orders_client: httpx.AsyncClient,
    resources: Resources,
    order_body: dict[str, object],
    customer_headers: Headers,
) -> None:
    headers = customer_headers("alice") | {"Idempotency-Key": str(uuid.uuid4())}
    answers = await asyncio.gather(
        *(orders_client.post("/orders", json=order_body, headers=headers) for _ in range(20))
    )

    assert await counts(resources) == (1, 1)
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {201, 409}, statuses
    assert len({answer.json()["id"] for answer in answers if answer.status_code == 201}) == 1


async def test_keys_belong_to_their_customer(
    orders_client: httpx.AsyncClient,
    resources: Resources,
    order_body: dict[str, object],
    customer_headers: Headers,
) -> None:
    for customer in ("alice", "bob"):
        headers = customer_headers(customer) | {"Idempotency-Key": "shared-key"}
        response = await orders_client.post("/orders", json=order_body, headers=headers)
        assert response.status_code == 201
        assert response.json()["customer_id"] == customer
    assert await counts(resources) == (2, 2)


async def test_a_refused_order_does_not_use_up_its_key(
    orders_client: httpx.AsyncClient,
    resources: Resources,
    order_body: dict[str, object],
    customer_headers: Headers,
) -> None:
    headers = customer_headers("alice") | {"Idempotency-Key": "after-422"}
    unknown = {"items": [{"product_id": str(uuid.uuid4()), "quantity": 1}]}
    refused = await orders_client.post("/orders", json=unknown, headers=headers)
    refused_again = await orders_client.post("/orders", json=unknown, headers=headers)

    assert (refused.status_code, refused_again.status_code) == (422, 422)
    assert await counts(resources) == (0, 0)


async def test_a_malformed_key_is_422(
    orders_client: httpx.AsyncClient, order_body: dict[str, object], customer_headers: Headers
) -> None:
    headers = customer_headers("alice") | {"Idempotency-Key": "x" * 300}
    response = await orders_client.post("/orders", json=order_body, headers=headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
