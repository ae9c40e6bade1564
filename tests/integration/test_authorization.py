"""Who may do what, over ASGI on the real apps and servers.

Customers see only their own orders: another customer's order answers 404,
exactly as a missing one, on every route that takes an order id. Catalog
writes, stock and the admin routes are for admins (403 for a customer, 401
without a token); reads of the catalog are anyone's.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from tests.integration.conftest import asgi_client, create_product

PROBLEM = "application/problem+json"
Headers = Callable[[str], dict[str, str]]


@pytest.fixture
async def alice(orders_app: FastAPI, customer_headers: Headers) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(orders_app, customer_headers("alice")) as client:
        yield client


@pytest.fixture
async def bob(orders_app: FastAPI, customer_headers: Headers) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(orders_app, customer_headers("bob")) as client:
        yield client


@pytest.fixture
async def anonymous(orders_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(orders_app) as client:
        yield client


@pytest.fixture
async def product_id(client: httpx.AsyncClient) -> str:
    return str((await create_product(client))["id"])


async def place(client: httpx.AsyncClient, product_id: str) -> dict[str, object]:
    response = await client.post(
        "/orders", json={"items": [{"product_id": product_id, "quantity": 1}]}
    )
    assert response.status_code == 201, response.text
    order: dict[str, object] = response.json()
    return order


async def test_an_order_belongs_to_the_tokens_subject(
    alice: httpx.AsyncClient, product_id: str
) -> None:
    order = await place(alice, product_id)
    assert order["customer_id"] == "alice"


async def test_another_customers_order_is_404_like_a_missing_one(
    alice: httpx.AsyncClient,
    bob: httpx.AsyncClient,
    orders_client: httpx.AsyncClient,
    product_id: str,
) -> None:
    bobs = await place(bob, product_id)
    missing = str(uuid.uuid4())

    for method, path in [("GET", "/orders/{}"), ("POST", "/orders/{}/cancel")]:
        stolen = await alice.request(method, path.format(bobs["id"]))
        absent = await alice.request(method, path.format(missing))

        assert stolen.status_code == absent.status_code == 404
        assert stolen.headers["content-type"] == PROBLEM
        # The same answer, but for the id it names: nothing says the order exists.
        assert stolen.text.replace(str(bobs["id"]), missing) == absent.text
        assert "bob" not in stolen.text

    unchanged = await orders_client.get(f"/orders/{bobs['id']}")
    assert unchanged.json()["status"] == "PENDING", "alice's cancel changed nothing"


async def test_customers_list_only_their_own_orders(
    alice: httpx.AsyncClient,
    bob: httpx.AsyncClient,
    orders_client: httpx.AsyncClient,
    product_id: str,
) -> None:
    alices = [(await place(alice, product_id))["id"] for _ in range(2)]
    bobs = [(await place(bob, product_id))["id"] for _ in range(3)]

    listed = (await alice.get("/orders")).json()
    everyone = (await orders_client.get("/orders")).json()
    filtered = (await orders_client.get("/orders", params={"customer_id": "bob"})).json()
    own_filter = await alice.get("/orders", params={"customer_id": "alice"})
    snooping = await alice.get("/orders", params={"customer_id": "bob"})

    assert [order["id"] for order in listed["items"]] == alices
    assert [order["id"] for order in everyone["items"]] == alices + bobs
    assert [order["id"] for order in filtered["items"]] == bobs
    assert [order["id"] for order in own_filter.json()["items"]] == alices
    assert snooping.status_code == 403
    assert snooping.headers["content-type"] == PROBLEM


async def test_an_admin_reads_and_cancels_any_order(
    bob: httpx.AsyncClient, orders_client: httpx.AsyncClient, product_id: str
) -> None:
    bobs = await place(bob, product_id)

    read = await orders_client.get(f"/orders/{bobs['id']}")
    cancelled = await orders_client.post(f"/orders/{bobs['id']}/cancel")

    assert read.status_code == 200
    assert read.json()["customer_id"] == "bob"
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "CANCELLED"


async def test_orders_need_a_token(anonymous: httpx.AsyncClient, product_id: str) -> None:
    some_order = uuid.uuid4()
    for method, path in [
        ("POST", "/orders"),
        ("GET", "/orders"),
        ("GET", f"/orders/{some_order}"),
        ("POST", f"/orders/{some_order}/cancel"),
    ]:
        body = {"items": [{"product_id": product_id, "quantity": 1}]}
        response = await anonymous.request(method, path, json=body if method == "POST" else None)

        assert response.status_code == 401, (method, path)
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "smuggled",
    [{"customer_id": "bob"}, {"status": "CONFIRMED"}, {"is_admin": True}],
)
async def test_identity_cannot_be_smuggled_in_the_body(
    alice: httpx.AsyncClient, product_id: str, smuggled: dict[str, object]
) -> None:
    body = {"items": [{"product_id": product_id, "quantity": 1}]} | smuggled

    response = await alice.post("/orders", json=body)

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == list(smuggled)
    assert (await alice.get("/orders")).json()["items"] == []


ADMIN_ONLY = [
    ("catalog", "POST", "/products", {"sku": "NEW-1", "name": "New", "price": "1.00"}),
    ("catalog", "PATCH", "/products/{id}", {"name": "Renamed"}),
    ("catalog", "POST", "/categories", {"name": "Kitchen"}),
    ("orders", "GET", "/products/{id}/stock", None),
    ("orders", "PUT", "/products/{id}/stock", {"on_hand": 3}),
    ("orders", "GET", "/admin/events", None),
    ("orders", "GET", "/admin/dead-letters", None),
    ("orders", "DELETE", "/admin/dead-letters", None),
    ("catalog", "DELETE", "/products/{id}", None),  # last: the others need the product
]


async def test_catalog_writes_stock_and_admin_routes_are_for_admins(
    app: FastAPI,
    orders_app: FastAPI,
    admin_headers: dict[str, str],
    customer_headers: Headers,
    product_id: str,
) -> None:
    apps = {"catalog": app, "orders": orders_app}
    for served_by, method, route, body in ADMIN_ONLY:
        path = route.format(id=product_id)
        async with asgi_client(apps[served_by]) as anonymous:
            nobody = await anonymous.request(method, path, json=body)
        async with asgi_client(apps[served_by], customer_headers("alice")) as customer:
            refused = await customer.request(method, path, json=body)
        async with asgi_client(apps[served_by], admin_headers) as admin:
            allowed = await admin.request(method, path, json=body)

        assert nobody.status_code == 401, (method, route)
        assert refused.status_code == 403, (method, route)
        assert refused.headers["content-type"] == PROBLEM
        assert allowed.status_code in {200, 201, 204}, (method, route, allowed.text)


async def test_catalog_reads_and_health_are_anyones(app: FastAPI, product_id: str) -> None:
    async with asgi_client(app) as anonymous:
        for path in ("/health", "/products", f"/products/{product_id}", "/categories"):
            assert (await anonymous.get(path)).status_code == 200, path


@pytest.mark.parametrize("body", [b"{", b"\xff\xfe", b'{"items": "x"}'])
async def test_who_calls_is_decided_before_what_they_sent(
    anonymous: httpx.AsyncClient, bob: httpx.AsyncClient, alice: httpx.AsyncClient, body: bytes
) -> None:
    json_body = {"content-type": "application/json"}
    stock = f"/products/{uuid.uuid4()}/stock"

    unknown = await anonymous.post("/orders", content=body, headers=json_body)
    not_admin = await bob.put(stock, content=body, headers=json_body)
    allowed = await alice.post("/orders", content=body, headers=json_body)

    assert (unknown.status_code, not_admin.status_code) == (401, 403)
    assert unknown.headers["content-type"] == PROBLEM
    assert unknown.headers["www-authenticate"].startswith("Bearer")
    # A caller who may call the route is told what is wrong with the body.
    assert allowed.status_code == 422
