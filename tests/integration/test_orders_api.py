"""The orders API over ASGI: placing, reading, listing and cancelling orders."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import text

from storefront.resources import Resources
from tests.integration.conftest import create_product

PROBLEM = "application/problem+json"


async def outbox_events(resources: Resources) -> list[tuple[str, str]]:
    async with resources.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT event_type, aggregate_id FROM outbox ORDER BY id")
        )
        return [(row.event_type, row.aggregate_id) for row in rows]


async def test_place_order_writes_order_and_event_together(
    client: httpx.AsyncClient, orders_client: httpx.AsyncClient, resources: Resources
) -> None:
    mug = await create_product(client, sku="MUG", price="12.50")
    tea = await create_product(client, sku="TEA", price="4.20")

    response = await orders_client.post(
        "/orders",
        json={
            "items": [
                {"product_id": mug["id"], "quantity": 2},
                {"product_id": tea["id"], "quantity": 3},
            ]
        },
        headers={"X-Correlation-Id": "corr-1"},
    )

    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"] == f"/orders/{order['id']}"
    assert order["status"] == "PENDING"
    assert order["total"] == "37.60"
    assert order["currency"] == "EUR"
    assert sorted(item["unit_price"] for item in order["items"]) == ["12.50", "4.20"]
    assert await outbox_events(resources) == [("OrderPlaced", order["id"])]
    async with resources.engine.connect() as connection:
        envelope = (await connection.execute(text("SELECT envelope FROM outbox"))).scalar_one()
    assert envelope["correlation_id"] == "corr-1"
    assert envelope["payload"]["total"] == "37.60"


async def test_unit_prices_are_a_snapshot(
    client: httpx.AsyncClient, orders_client: httpx.AsyncClient
) -> None:
    mug = await create_product(client, price="10.00")
    placed = (
        await orders_client.post(
            "/orders", json={"items": [{"product_id": mug["id"], "quantity": 1}]}
        )
    ).json()
    await client.patch(f"/products/{mug['id']}", json={"price": "99.00"})

    again = (await orders_client.get(f"/orders/{placed['id']}")).json()
    assert again["items"][0]["unit_price"] == "10.00"
    assert again["total"] == "10.00"


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([], "items"),
        ([{"product_id": "PRODUCT", "quantity": 0}], "items.0.quantity"),
        ([{"product_id": "PRODUCT", "quantity": 101}], "items.0.quantity"),
        ([{"product_id": "PRODUCT", "quantity": "2"}], "items.0.quantity"),
        ([{"product_id": "PRODUCT", "quantity": 1}] * 2, "items.1.product_id"),
        ([{"product_id": "PRODUCT", "quantity": 1, "price": "0.01"}], "items.0.price"),
        (
            [{"product_id": "PRODUCT", "quantity": 1}, {"product_id": "UNKNOWN", "quantity": 1}],
            "items.1.product_id",
        ),
    ],
)
async def test_bad_orders_name_the_item(
    client: httpx.AsyncClient,
    orders_client: httpx.AsyncClient,
    resources: Resources,
    items: list[dict[str, object]],
    field: str,
) -> None:
    product = await create_product(client)
    unknown = str(uuid.uuid4())
    ids = {"PRODUCT": product["id"], "UNKNOWN": unknown}
    body = [item | {"product_id": ids[str(item["product_id"])]} for item in items]

    response = await orders_client.post("/orders", json={"items": body})

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert field in [error["field"] for error in response.json()["errors"]]
    assert await outbox_events(resources) == [], "a refused order writes nothing"


async def test_extra_fields_are_refused(orders_client: httpx.AsyncClient) -> None:
    response = await orders_client.post(
        "/orders", json={"items": [], "customer_id": "someone-else", "status": "CONFIRMED"}
    )
    assert response.status_code == 422
    fields = [error["field"] for error in response.json()["errors"]]
    assert "customer_id" in fields
    assert "status" in fields


async def test_cancel_pending_order(
    client: httpx.AsyncClient, orders_client: httpx.AsyncClient, resources: Resources
) -> None:
    product = await create_product(client)
    order = (
        await orders_client.post(
            "/orders", json={"items": [{"product_id": product["id"], "quantity": 1}]}
        )
    ).json()

    cancelled = await orders_client.post(f"/orders/{order['id']}/cancel")
    again = await orders_client.post(f"/orders/{order['id']}/cancel")

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM
    assert [event for event, _ in await outbox_events(resources)] == [
        "OrderPlaced",
        "OrderCancelled",
    ]


async def test_unknown_order_is_404(orders_client: httpx.AsyncClient) -> None:
    missing = uuid.uuid4()
    for response in (
        await orders_client.get(f"/orders/{missing}"),
        await orders_client.post(f"/orders/{missing}/cancel"),
    ):
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM


async def test_a_customer_id_postgresql_cannot_store_is_invalid_input(
    orders_client: httpx.AsyncClient,
) -> None:
    response = await orders_client.get("/orders", params={"customer_id": "alice\x00"})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "customer_id"


async def test_list_orders_by_status_with_cursor(
    client: httpx.AsyncClient, orders_client: httpx.AsyncClient
) -> None:
    product = await create_product(client)
    body = {"items": [{"product_id": product["id"], "quantity": 1}]}
    ids = [(await orders_client.post("/orders", json=body)).json()["id"] for _ in range(5)]
    await orders_client.post(f"/orders/{ids[1]}/cancel")

    first = (await orders_client.get("/orders", params={"status": "PENDING", "limit": 2})).json()
    second = (
        await orders_client.get(
            "/orders", params={"status": "PENDING", "limit": 2, "cursor": first["next_cursor"]}
        )
    ).json()
    cancelled = (await orders_client.get("/orders", params={"status": "CANCELLED"})).json()
    bad = await orders_client.get("/orders", params={"status": "LOST"})

    assert [o["id"] for o in first["items"] + second["items"]] == [ids[0], ids[2], ids[3], ids[4]]
    assert second["next_cursor"] is None
    assert [o["id"] for o in cancelled["items"]] == [ids[1]]
    assert bad.status_code == 422


async def test_stock_is_set_and_read(
    client: httpx.AsyncClient, orders_client: httpx.AsyncClient
) -> None:
    product = await create_product(client)

    before = await orders_client.get(f"/products/{product['id']}/stock")
    put = await orders_client.put(f"/products/{product['id']}/stock", json={"on_hand": 7})
    negative = await orders_client.put(f"/products/{product['id']}/stock", json={"on_hand": -1})
    unknown = await orders_client.put(f"/products/{uuid.uuid4()}/stock", json={"on_hand": 1})

    assert before.json() == {
        "product_id": product["id"],
        "on_hand": 0,
        "reserved": 0,
        "available": 0,
    }
    assert put.status_code == 200
    assert put.json()["available"] == 7
    assert negative.status_code == 422
    assert unknown.status_code == 404


async def test_private_answers_are_never_stored_by_a_cache(
    orders_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    own = await orders_client.get("/orders")
    admin = await orders_client.get("/admin/events")
    public = await client.get("/products")  # the catalog's reads keep their own policy

    assert own.headers["cache-control"] == "no-store"
    assert admin.headers["cache-control"] == "no-store"
    assert public.headers["cache-control"].startswith("public")
