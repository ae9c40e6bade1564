"""The catalog API over ASGI against real PostgreSQL and Redis."""

from __future__ import annotations

import uuid

import httpx
import pytest

from storefront.catalog.service import product_cache_key
from storefront.resources import Resources
from tests.integration.conftest import create_product

PROBLEM = "application/problem+json"


async def test_create_then_read_through_the_cache(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    created = await create_product(client, sku="TEA-1", name="Green tea", price="4.20")
    assert created["price"] == "4.20"
    assert created["currency"] == "EUR"

    # The write put the product into the cache: reading it back is a hit.
    written = await client.get(f"/products/{created['id']}")
    await resources.cache.invalidate(product_cache_key(uuid.UUID(str(created["id"]))))
    first = await client.get(f"/products/{created['id']}")
    second = await client.get(f"/products/{created['id']}")

    assert written.status_code == first.status_code == second.status_code == 200
    outcomes = [response.headers["x-cache"] for response in (written, first, second)]
    assert outcomes == ["hit", "miss", "hit"]
    assert written.json() == first.json() == second.json() == created
    assert first.headers["etag"] == second.headers["etag"]
    assert "max-age" in first.headers["cache-control"]


async def test_post_answers_201_with_location(client: httpx.AsyncClient) -> None:
    response = await client.post("/products", json={"sku": "A-1", "name": "A", "price": "1.00"})
    assert response.status_code == 201
    assert response.headers["location"] == f"/products/{response.json()['id']}"


async def test_if_none_match_answers_304(client: httpx.AsyncClient) -> None:
    created = await create_product(client)
    etag = (await client.get(f"/products/{created['id']}")).headers["etag"]

    unchanged = await client.get(f"/products/{created['id']}", headers={"If-None-Match": etag})
    await client.patch(f"/products/{created['id']}", json={"price": "13.00"})
    changed = await client.get(f"/products/{created['id']}", headers={"If-None-Match": etag})

    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert changed.status_code == 200
    assert changed.json()["price"] == "13.00"


async def test_patch_invalidates_the_cached_product(client: httpx.AsyncClient) -> None:
    created = await create_product(client, name="Old name")
    await client.get(f"/products/{created['id']}")
    assert (await client.get(f"/products/{created['id']}")).headers["x-cache"] == "hit"

    patched = await client.patch(f"/products/{created['id']}", json={"name": "New name"})
    after = await client.get(f"/products/{created['id']}")

    assert patched.status_code == 200
    assert patched.json()["name"] == "New name"
    assert after.json()["name"] == "New name"
    assert after.json()["updated_at"] > created["updated_at"]


async def test_delete_invalidates_product_and_lists(client: httpx.AsyncClient) -> None:
    created = await create_product(client)
    await client.get(f"/products/{created['id']}")
    listed = await client.get("/products")
    assert [item["id"] for item in listed.json()["items"]] == [created["id"]]

    deleted = await client.delete(f"/products/{created['id']}")
    gone = await client.get(f"/products/{created['id']}")
    listed_after = await client.get("/products")

    assert deleted.status_code == 204
    assert gone.status_code == 404
    assert gone.headers["content-type"] == PROBLEM
    assert listed_after.json()["items"] == []
    assert (await client.delete(f"/products/{created['id']}")).status_code == 404


async def test_a_product_in_an_order_is_not_deleted(
    client: httpx.AsyncClient, orders_client: httpx.AsyncClient
) -> None:
    product = await create_product(client)
    order = {"items": [{"product_id": product["id"], "quantity": 1}]}
    assert (await orders_client.post("/orders", json=order)).status_code == 201

    refused = await client.delete(f"/products/{product['id']}")

    assert refused.status_code == 409
    assert refused.headers["content-type"] == PROBLEM
    assert "in orders" in refused.json()["detail"]
    assert (await client.get(f"/products/{product['id']}")).status_code == 200


async def test_a_body_that_is_not_utf8_is_invalid_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/products", content=b'{"sku": "\xff"}', headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"] == [
        {"field": "body", "reason": "JSON decode error: not UTF-8"}
    ]


async def test_text_postgresql_cannot_store_is_invalid_input(client: httpx.AsyncClient) -> None:
    category = await client.post("/categories", json={"name": "Tea\u0000"})
    product = await client.post("/products", json={"sku": "A", "name": "A\u0000", "price": "1.00"})
    search = await client.get("/products", params={"q": "tea\x00"})

    assert [category.status_code, product.status_code, search.status_code] == [422, 422, 422]
    assert category.json()["errors"][0]["field"] == "name"
    assert search.json()["errors"][0]["field"] == "q"


async def test_a_write_makes_cached_list_pages_stale(client: httpx.AsyncClient) -> None:
    await create_product(client, sku="A", name="A")
    assert (await client.get("/products")).headers["x-cache"] == "miss"
    assert (await client.get("/products")).headers["x-cache"] == "hit"

    await create_product(client, sku="B", name="B")
    after = await client.get("/products")

    assert after.headers["x-cache"] == "miss"
    assert [item["sku"] for item in after.json()["items"]] == ["A", "B"]


async def test_filters_by_category_and_name(client: httpx.AsyncClient) -> None:
    drinks = (await client.post("/categories", json={"name": "Drinks"})).json()
    await create_product(client, sku="T", name="Green tea", category_id=drinks["id"])
    await create_product(client, sku="C", name="Black coffee", category_id=drinks["id"])
    await create_product(client, sku="M", name="Tea mug 100%")

    by_category = await client.get("/products", params={"category_id": drinks["id"]})
    by_name = await client.get("/products", params={"q": "TEA"})
    by_both = await client.get("/products", params={"q": "tea", "category_id": drinks["id"]})
    literal_percent = await client.get("/products", params={"q": "100%"})

    assert {item["sku"] for item in by_category.json()["items"]} == {"T", "C"}
    assert {item["sku"] for item in by_name.json()["items"]} == {"T", "M"}
    assert [item["sku"] for item in by_both.json()["items"]] == ["T"]
    assert [item["sku"] for item in literal_percent.json()["items"]] == ["M"]


async def test_categories(client: httpx.AsyncClient) -> None:
    created = await client.post("/categories", json={"name": "Tea"})
    duplicate = await client.post("/categories", json={"name": "Tea"})
    listed = await client.get("/categories")

    assert created.status_code == 201
    assert created.headers["location"] == f"/categories/{created.json()['id']}"
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == PROBLEM
    assert [category["name"] for category in listed.json()] == ["Tea"]


async def test_duplicate_sku_is_a_conflict(client: httpx.AsyncClient) -> None:
    await create_product(client, sku="DUP")
    response = await client.post("/products", json={"sku": "DUP", "name": "X", "price": "1.00"})
    other = await create_product(client, sku="OTHER")
    renamed = await client.patch(f"/products/{other['id']}", json={"sku": "DUP"})

    for answer in (response, renamed):
        assert answer.status_code == 409
        assert answer.headers["content-type"] == PROBLEM
        assert "DUP" in answer.json()["detail"]


async def test_unknown_category_names_the_field(client: httpx.AsyncClient) -> None:
    unknown = str(uuid.uuid4())
    response = await client.post(
        "/products", json={"sku": "X", "name": "X", "price": "1.00", "category_id": unknown}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "category_id", "reason": f"category {unknown} does not exist"}
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "No sku", "price": "1.00"}, "sku"),
        ({"sku": "S", "name": "Float", "price": 12.5}, "price"),
        # Decimal() accepts all of these; the API's one grammar does not.
        ({"sku": "S", "name": "Integer", "price": 12}, "price"),
        ({"sku": "S", "name": "Exponent", "price": "1E+1"}, "price"),
        ({"sku": "S", "name": "Underscore", "price": "1_0.50"}, "price"),
        ({"sku": "S", "name": "Spaces", "price": " 7.5 "}, "price"),
        ({"sku": "S", "name": "Leading zeros", "price": "0012.50"}, "price"),
        ({"sku": "S", "name": "Small exponent", "price": "1e-2"}, "price"),
        ({"sku": "S", "name": "Negative", "price": "-1.00"}, "price"),
        ({"sku": "S", "name": "Fraction", "price": "1.001"}, "price"),
        ({"sku": "S", "name": "Money", "price": "1.00", "currency": "euro"}, "currency"),
        ({"sku": "S", "name": "", "price": "1.00"}, "name"),
        ({"sku": "S", "name": "Extra", "price": "1.00", "is_admin": True}, "is_admin"),
        ({"sku": "S", "name": "Bad id", "price": "1.00", "category_id": "nope"}, "category_id"),
    ],
)
async def test_bad_bodies_name_the_field(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    response = await client.post("/products", json=body)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 422
    assert field in [error["field"] for error in problem["errors"]]
    assert field in problem["detail"]
    assert "Traceback" not in response.text


async def test_body_that_is_not_json(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/products", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"name": None}, "name"), ({}, "body"), ({"price": "0"}, "price"), ({"id": "x"}, "id")],
)
async def test_bad_patches_name_the_field(
    client: httpx.AsyncClient, changes: dict[str, object], field: str
) -> None:
    created = await create_product(client)
    response = await client.patch(f"/products/{created['id']}", json=changes)

    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]


async def test_unknown_and_malformed_ids(client: httpx.AsyncClient) -> None:
    missing = await client.get(f"/products/{uuid.uuid4()}")
    malformed = await client.get("/products/not-an-id")
    patch_missing = await client.patch(f"/products/{uuid.uuid4()}", json={"name": "x"})

    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert "does not exist" in missing.json()["detail"]
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["field"] == "product_id"
    assert patch_missing.status_code == 404


async def test_bad_query_parameters(client: httpx.AsyncClient) -> None:
    bad_cursor = await client.get("/products", params={"cursor": "garbage"})
    bad_limit = await client.get("/products", params={"limit": 0})

    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["errors"] == [
        {"field": "cursor", "reason": "is not a cursor this API issued"}
    ]
    assert bad_limit.status_code == 422
    assert bad_limit.json()["errors"][0]["field"] == "limit"


async def test_limit_is_capped(client: httpx.AsyncClient) -> None:
    for number in range(3):
        await create_product(client, sku=f"S{number}")
    response = await client.get("/products", params={"limit": 10_000})
    assert response.status_code == 200
    assert len(response.json()["items"]) == 3


async def test_correlation_id_is_echoed(client: httpx.AsyncClient) -> None:
    given = await client.get("/health", headers={"X-Correlation-Id": "abc-123"})
    generated = await client.get("/health")

    assert given.headers["x-correlation-id"] == "abc-123"
    assert len(generated.headers["x-correlation-id"]) == 36


async def test_health(client: httpx.AsyncClient) -> None:
    live = await client.get("/health")
    ready = await client.get("/health/ready")

    assert live.json() == {"status": "ok"}
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["postgres"]["ok"]
    assert checks["redis"]["ok"]
    assert checks["postgres"]["ms"] >= 0


async def test_head_is_the_get_without_its_body(client: httpx.AsyncClient) -> None:
    created = await create_product(client)
    got = await client.get(f"/products/{created['id']}")

    head = await client.head(f"/products/{created['id']}")
    listed = await client.head("/products", params={"limit": 2})
    not_a_get = await client.head(f"/products/{created['id']}/views")

    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == got.headers["etag"]
    assert head.headers["content-length"] == str(len(got.content))
    assert head.headers["content-type"] == got.headers["content-type"]
    assert listed.status_code == 200
    assert listed.content == b""
    # A path served only with POST: HEAD is a GET there, which it does not serve.
    assert not_a_get.status_code == 405
    assert not_a_get.content == b""


async def test_unknown_route_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_a_created_category_is_where_its_location_says(client: httpx.AsyncClient) -> None:
    created = await client.post("/categories", json={"name": "Kitchen"})

    found = await client.get(created.headers["location"])

    assert found.status_code == 200
    assert found.json() == created.json()
    missing = await client.get(f"/categories/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_the_whole_apis_document_and_its_page_are_served(client: httpx.AsyncClient) -> None:
    document = await client.get("/openapi.json")
    page = await client.get("/docs")

    assert document.status_code == 200
    paths = document.json()["paths"]
    assert {"/products", "/orders", "/reports", "/admin/events"} <= set(paths)
    assert page.status_code == 200
    assert "/openapi.json" in page.text
