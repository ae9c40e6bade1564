"""The cart over ASGI on real Redis and PostgreSQL: lines priced from the
catalog, the TTL renewed by every use, the limits (also under concurrent
requests), one cart per customer, and 503 while Redis is down."""

from __future__ import annotations

import asyncio
import math
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from storefront import wiring
from storefront.carts.store import cart_key
from storefront.resources import Resources
from storefront.settings import Settings
from storefront_dev.embedded import EmbeddedRedis, start_redis
from tests.integration.conftest import asgi_client, create_product

PROBLEM = "application/problem+json"
Headers = Callable[[str], dict[str, str]]
SMALL_CART = {"cart_max_lines": 3, "cart_max_quantity": 5}
# Below the cart's TTL (7 days) by far: a PTTL above it after a use was renewed.
SHORTENED_MS = 60_000


@pytest.fixture
async def alice(orders_app: FastAPI, customer_headers: Headers) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(orders_app, customer_headers("alice")) as client:
        yield client


@pytest.fixture
async def bob(orders_app: FastAPI, customer_headers: Headers) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(orders_app, customer_headers("bob")) as client:
        yield client


async def product(client: httpx.AsyncClient, sku: str, price: str = "12.50", **more: Any) -> str:
    created = await create_product(client, sku=sku, name=sku.title(), price=price, **more)
    return str(created["id"])


async def put(client: httpx.AsyncClient, product_id: str, quantity: object) -> httpx.Response:
    return await client.put(f"/cart/items/{product_id}", json={"quantity": quantity})


def lines_of(cart: dict[str, Any]) -> dict[str, int]:
    return {line["product_id"]: line["quantity"] for line in cart["lines"]}


async def test_lines_are_priced_from_the_catalog_and_totalled(
    client: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    mug, tea = await product(client, "mug", "12.50"), await product(client, "tea", "4.20")

    first = await put(alice, mug, 2)
    second = await put(alice, tea, 3)
    read = await alice.get("/cart")

    assert (first.status_code, second.status_code, read.status_code) == (200, 200, 200)
    assert lines_of(first.json()) == {mug: 2}
    cart = read.json()
    assert cart == second.json() | {"expires_at": cart["expires_at"]}
    by_id = {line["product_id"]: line for line in cart["lines"]}
    assert by_id[mug] | {"product_id": "", "quantity": 0} == {
        "product_id": "",
        "quantity": 0,
        "available": True,
        "name": "Mug",
        "unit_price": "12.50",
        "currency": "EUR",
        "line_total": "25.00",
    }
    assert by_id[tea]["line_total"] == "12.60"
    assert (cart["total"], cart["currency"]) == ("37.60", "EUR")
    assert read.headers["cache-control"] == "no-store"


async def test_a_put_replaces_the_lines_quantity(
    client: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    mug = await product(client, "mug")

    await put(alice, mug, 2)
    answer = await put(alice, mug, 5)

    assert lines_of(answer.json()) == {mug: 5}
    assert answer.json()["total"] == "62.50"


async def test_delete_removes_a_line_and_deleting_it_again_answers_the_same(
    client: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    mug, tea = await product(client, "mug"), await product(client, "tea")
    await put(alice, mug, 1)
    await put(alice, tea, 1)

    once = await alice.delete(f"/cart/items/{mug}")
    twice = await alice.delete(f"/cart/items/{mug}")

    assert (once.status_code, twice.status_code) == (200, 200)
    assert lines_of(once.json()) == lines_of(twice.json()) == {tea: 1}


async def test_deleting_the_last_line_or_the_cart_leaves_no_cart(
    client: httpx.AsyncClient, alice: httpx.AsyncClient, resources: Resources
) -> None:
    mug, tea = await product(client, "mug"), await product(client, "tea")
    key = cart_key(resources.settings, "alice")
    await put(alice, mug, 1)
    emptied = (await alice.delete(f"/cart/items/{mug}")).json()
    no_key_after_last_line = await resources.redis.exists(key)
    await put(alice, tea, 1)

    cleared = await alice.delete("/cart")
    read = (await alice.get("/cart")).json()

    assert emptied == {"lines": [], "total": None, "currency": None, "expires_at": None}
    assert no_key_after_last_line == 0
    assert (cleared.status_code, cleared.content) == (204, b"")
    assert read == emptied
    assert await resources.redis.exists(key) == 0  # a read creates nothing


async def test_prices_and_names_are_read_again_after_the_catalog_changes(
    client: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    mug = await product(client, "mug", "10.00")
    await put(alice, mug, 3)

    changed = await client.patch(f"/products/{mug}", json={"price": "11.00", "name": "Big mug"})
    cart = (await alice.get("/cart")).json()

    assert changed.status_code == 200
    assert (cart["lines"][0]["name"], cart["lines"][0]["unit_price"]) == ("Big mug", "11.00")
    assert cart["total"] == "33.00"


async def test_a_product_deleted_from_the_catalog_stays_as_unavailable(
    client: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    mug, tea = await product(client, "mug", "12.50"), await product(client, "tea", "4.20")
    await put(alice, mug, 1)
    await put(alice, tea, 2)

    assert (await client.delete(f"/products/{tea}")).status_code == 204
    cart = (await alice.get("/cart")).json()

    gone = next(line for line in cart["lines"] if line["product_id"] == tea)
    assert gone == {
        "product_id": tea,
        "quantity": 2,
        "available": False,
        "name": None,
        "unit_price": None,
        "currency": None,
        "line_total": None,
    }
    assert cart["total"] == "12.50"
    # Until the customer removes it, and then it is gone.
    assert lines_of((await alice.delete(f"/cart/items/{tea}")).json()) == {mug: 1}


async def test_an_unknown_product_is_404_and_makes_no_cart(
    alice: httpx.AsyncClient, resources: Resources
) -> None:
    answer = await put(alice, "0190f0e0-0000-7000-8000-000000000000", 1)

    assert answer.status_code == 404
    assert answer.headers["content-type"] == PROBLEM
    assert "does not exist" in answer.json()["detail"]
    assert await resources.redis.exists(cart_key(resources.settings, "alice")) == 0


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"quantity": 0}, "quantity", "DELETE /cart/items/{product_id} removes a line"),
        ({"quantity": 101}, "quantity", "must be at most 100"),
        ({"quantity": "2"}, "quantity", "valid integer"),
        ({"quantity": 10**40}, "quantity", "must be at most 100"),
        ({}, "quantity", "Field required"),
        ({"quantity": 1, "price": "0.01"}, "price", "Extra inputs are not permitted"),
    ],
)
async def test_a_bad_quantity_is_422_naming_the_field_and_the_reason(
    client: httpx.AsyncClient,
    alice: httpx.AsyncClient,
    body: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    mug = await product(client, "mug")

    answer = await alice.put(f"/cart/items/{mug}", json=body)

    assert answer.status_code == 422
    assert answer.headers["content-type"] == PROBLEM
    (error,) = answer.json()["errors"]
    assert error["field"] == field
    assert reason in error["reason"]


async def test_a_product_id_that_is_no_uuid_is_422(alice: httpx.AsyncClient) -> None:
    answer = await put(alice, "mug", 1)

    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "product_id"


async def pttl(resources: Resources, customer: str) -> int:
    return int(await resources.redis.pttl(cart_key(resources.settings, customer)))


async def test_every_use_renews_the_carts_ttl(
    client: httpx.AsyncClient, alice: httpx.AsyncClient, resources: Resources
) -> None:
    mug, tea = await product(client, "mug"), await product(client, "tea")
    key = cart_key(resources.settings, "alice")
    ttl_ms = resources.settings.cart_ttl_seconds * 1000
    before = datetime.now(UTC)

    put_answer = (await put(alice, mug, 1)).json()
    assert SHORTENED_MS < await pttl(resources, "alice") <= ttl_ms
    expires_at = datetime.fromisoformat(put_answer["expires_at"])
    assert before + timedelta(milliseconds=SHORTENED_MS) < expires_at
    assert expires_at <= datetime.now(UTC) + timedelta(milliseconds=ttl_ms)

    uses = [
        ("GET", "/cart", None),
        ("PUT", f"/cart/items/{tea}", {"quantity": 2}),
        ("DELETE", f"/cart/items/{tea}", None),
    ]
    for method, path, body in uses:
        await resources.redis.pexpire(key, SHORTENED_MS)
        assert (await alice.request(method, path, json=body)).status_code == 200
        assert await pttl(resources, "alice") > SHORTENED_MS, f"{method} did not renew the TTL"


async def test_the_cart_is_one_hash_under_the_prefix_with_no_subject_in_its_name(
    client: httpx.AsyncClient, alice: httpx.AsyncClient, resources: Resources, redis_key_prefix: str
) -> None:
    mug = await product(client, "mug")
    await put(alice, mug, 2)

    keys = [key async for key in resources.redis.scan_iter(match=f"{redis_key_prefix}cart:*")]

    assert keys == [cart_key(resources.settings, "alice").encode()]
    assert b"alice" not in keys[0]
    assert await resources.redis.hgetall(keys[0]) == {mug.encode(): b"2"}


async def test_each_customer_has_a_cart_of_their_own(
    client: httpx.AsyncClient, alice: httpx.AsyncClient, bob: httpx.AsyncClient
) -> None:
    mug, tea = await product(client, "mug"), await product(client, "tea")
    await put(alice, mug, 2)
    await put(bob, tea, 1)

    bob_removes_alices_line = await bob.delete(f"/cart/items/{mug}")
    bob_clears = await bob.delete("/cart")
    alices = (await alice.get("/cart")).json()
    bobs = (await bob.get("/cart")).json()

    assert (bob_removes_alices_line.status_code, bob_clears.status_code) == (200, 204)
    assert lines_of(alices) == {mug: 2}
    assert lines_of(bobs) == {}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/cart", None),
        ("DELETE", "/cart", None),
        ("PUT", "/cart/items/0190f0e0-0000-7000-8000-000000000000", {"quantity": 1}),
        ("PUT", "/cart/items/not-a-uuid", {"quantity": "not a number"}),
        ("DELETE", "/cart/items/0190f0e0-0000-7000-8000-000000000000", None),
    ],
)
async def test_a_caller_without_a_token_is_401_before_the_input_is_read(
    orders_app: FastAPI, method: str, path: str, body: dict[str, Any] | None
) -> None:
    async with asgi_client(orders_app) as anonymous:
        answer = await anonymous.request(method, path, json=body)

    assert answer.status_code == 401
    assert answer.headers["content-type"] == PROBLEM
    assert answer.headers["www-authenticate"].startswith("Bearer")


@pytest.fixture
async def small_carts(settings: Settings) -> AsyncIterator[FastAPI]:
    """The orders app with carts of at most 3 lines and 5 of a product."""
    resources = Resources.from_settings(settings.model_copy(update=SMALL_CART))
    yield wiring.orders_app(lambda: resources)
    await resources.close()


async def test_the_line_limit_refuses_a_new_line_but_not_a_change(
    client: httpx.AsyncClient, small_carts: FastAPI, customer_headers: Headers
) -> None:
    ids = [await product(client, f"p{n}") for n in range(4)]
    async with asgi_client(small_carts, customer_headers("alice")) as alice:
        added = [(await put(alice, product_id, 1)).status_code for product_id in ids[:3]]
        refused = await put(alice, ids[3], 1)
        changed = await put(alice, ids[0], 5)
        too_many = await put(alice, ids[0], 6)

    assert added == [200, 200, 200]
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {
            "field": "product_id",
            "reason": "the cart already has 3 lines, its limit; remove one to add another",
        }
    ]
    assert lines_of(changed.json())[ids[0]] == 5
    assert too_many.status_code == 422
    assert too_many.json()["errors"] == [{"field": "quantity", "reason": "must be at most 5"}]


async def test_concurrent_puts_never_pass_the_line_limit(
    client: httpx.AsyncClient,
    small_carts: FastAPI,
    customer_headers: Headers,
    resources: Resources,
) -> None:
    ids = [await product(client, f"p{n}") for n in range(10)]
    async with asgi_client(small_carts, customer_headers("alice")) as alice:
        # One request first: redis-py's async cluster client, on its very first
        # commands, can drop connections that concurrent commands are opening
        # (AttributeError). A Lambda container sends one request at a time;
        # this test is about the cart's limit, not the client's start.
        assert (await alice.get("/cart")).status_code == 200
        answers = await asyncio.gather(*(put(alice, product_id, 1) for product_id in ids))

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 3 + [422] * 7
    assert await resources.redis.hlen(cart_key(resources.settings, "alice")) == 3


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own, so it can be stopped without touching the shared one."""
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
def cooldown(request: pytest.FixtureRequest) -> float:
    return float(getattr(request, "param", 0.2))


@pytest.fixture
async def fragile(
    settings: Settings, own_redis: EmbeddedRedis, cooldown: float
) -> AsyncIterator[tuple[FastAPI, FastAPI, Resources]]:
    """The catalog and orders apps on one Redis the test can stop."""
    resources = Resources.from_settings(
        settings.model_copy(
            update={"redis_url": own_redis.url, "cache_breaker_cooldown_seconds": cooldown}
        )
    )
    yield wiring.catalog_app(lambda: resources), wiring.orders_app(lambda: resources), resources
    await resources.close()


async def cart_answers(shopper: httpx.AsyncClient, product_id: str) -> list[httpx.Response]:
    return [
        await shopper.get("/cart"),
        await put(shopper, product_id, 2),
        await shopper.delete(f"/cart/items/{product_id}"),
        await shopper.delete("/cart"),
    ]


def assert_unavailable(answers: list[httpx.Response], retry_after: int) -> None:
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == PROBLEM
        assert answer.headers["retry-after"] == str(retry_after)
        assert answer.json()["title"] == "Service unavailable"


async def test_redis_down_makes_cart_routes_503_while_the_catalog_serves(
    fragile: tuple[FastAPI, FastAPI, Resources],
    own_redis: EmbeddedRedis,
    admin_headers: dict[str, str],
    customer_headers: Headers,
) -> None:
    catalog_app, orders_app, _ = fragile
    async with (
        asgi_client(catalog_app, admin_headers) as shop,
        asgi_client(orders_app, customer_headers("alice")) as alice,
        # A customer browses: an admin's token, unchecked for revocation with
        # Redis down, is refused (AUTH_REVOCATION_FAIL_CLOSED).
        asgi_client(catalog_app, customer_headers("alice")) as browsing,
    ):
        mug = await product(shop, "mug")
        assert (await put(alice, mug, 1)).status_code == 200

        own_redis.stop()
        answers = await cart_answers(alice, mug)
        products = await browsing.get("/products")
        one = await browsing.get(f"/products/{mug}")

    assert_unavailable(answers, retry_after=1)
    assert (products.status_code, one.status_code) == (200, 200)
    assert one.headers["x-cache"] == "bypass"


@pytest.mark.parametrize("cooldown", [60.0], indirect=True)
async def test_a_redis_that_stops_answering_is_503_not_500(
    fragile: tuple[FastAPI, FastAPI, Resources], own_redis: EmbeddedRedis, customer_headers: Headers
) -> None:
    """A hung Redis (paused processes: connections open, no replies) times out."""
    _, orders_app, _ = fragile
    async with asgi_client(orders_app, customer_headers("alice")) as alice:
        assert (await alice.get("/cart")).status_code == 200
        processes = [node.process for node in getattr(own_redis, "nodes", [own_redis])]
        for process in processes:
            process.send_signal(signal.SIGSTOP)
        try:
            answer = await alice.get("/cart")
        finally:
            for process in processes:
                process.send_signal(signal.SIGCONT)

    assert_unavailable([answer], retry_after=60)


@pytest.mark.parametrize("cooldown", [60.0], indirect=True)
async def test_while_the_breaker_is_open_carts_answer_503_without_asking_redis(
    fragile: tuple[FastAPI, FastAPI, Resources],
    own_redis: EmbeddedRedis,
    admin_headers: dict[str, str],
    customer_headers: Headers,
) -> None:
    catalog_app, orders_app, resources = fragile
    async with (
        asgi_client(catalog_app, admin_headers) as shop,
        asgi_client(orders_app, customer_headers("alice")) as alice,
        asgi_client(catalog_app, customer_headers("alice")) as browsing,
    ):
        mug = await product(shop, "mug")
        own_redis.stop()
        # Each pays the failure once and opens its breakers: the limiter's and
        # the carts' (a cart read), the cache's (a product read; a customer's,
        # as an admin's token is refused while its revocation is unknown).
        await alice.get("/cart")
        await browsing.get(f"/products/{mug}")
        calls = 0
        original = resources.redis.execute_command

        async def counting(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            return await original(*args, **kwargs)

        resources.redis.execute_command = counting  # type: ignore[method-assign]
        answers = await cart_answers(alice, mug)

    assert_unavailable(answers, retry_after=math.ceil(60.0))
    assert calls == 0
