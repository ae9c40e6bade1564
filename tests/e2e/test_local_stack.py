"""``storefront run`` end to end: a real process, real HTTP, real PostgreSQL and Redis.

The stack gets a database of its own on the session's server (and its own
Redis key prefix), so the demo catalog loads exactly as on a fresh machine
and nothing it writes reaches the other tests. Its schedules run as they do
under ``make run``: the relay and workers carry placed orders through the saga.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from storefront_dev.demo import DEMO_CATALOG
from storefront_dev.embedded import free_port
from tests.conftest import own_database

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0
# How long a placed order may take to be confirmed before the saga counts as
# broken: a bound on a functional wait, far above what it takes, not a speed test.
SAGA_TIMEOUT = 20.0
HOLD_SECONDS = 15


@dataclass
class Output:
    """Everything the process writes, collected by a thread so its pipe never fills."""

    lines: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def collect(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def wait_for(self, fragment: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if fragment in self.text:
                return self.text
            time.sleep(0.05)
        raise AssertionError(f"{fragment!r} never appeared in:\n{self.text}")


@dataclass
class Stack:
    url: str
    process: subprocess.Popen[str]
    output: Output
    client: httpx.Client  # as an admin, with a token from ``storefront token --admin``
    environment: dict[str, str]

    def token(self, *args: str) -> str:
        """``storefront token ARGS``, as the README has developers run it."""
        return self.cli("token", *args).strip()

    def cli(self, *args: str) -> str:
        """``storefront ARGS``: its output."""
        ran = subprocess.run(
            [sys.executable, "-m", "storefront_dev.cli", *args],
            cwd=ROOT,
            env=self.environment,
            capture_output=True,
            text=True,
            check=False,
        )
        assert ran.returncode == 0, f"storefront {' '.join(args)}: {ran.stdout}{ran.stderr}"
        return ran.stdout


@pytest.fixture(scope="module")
def stack(database_server_url: str, redis_url: str, redis_key_prefix: str) -> Iterator[Stack]:
    # The stack migrates its database itself: that is part of what is tested.
    with own_database(database_server_url, "e2e", migrated=False) as database_url:
        yield from _running_stack(database_url, redis_url, f"{redis_key_prefix}e2e:")


def _running_stack(database_url: str, redis_url: str, key_prefix: str) -> Iterator[Stack]:
    port = free_port()
    # Tokens from a real issuer configured in the developer's shell do not apply.
    inherited = {
        key: value
        for key, value in os.environ.items()
        if key not in {"AUTH_JWKS_URL", "AUTH_SECRET_ARN", "AUTH_ISSUER", "AUTH_AUDIENCE"}
    }
    environment = {
        **inherited,
        # The stack's secret, not the checkout's .local/auth-secret.
        "AUTH_HS256_SECRET": secrets.token_urlsafe(48),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": key_prefix,
        "PYTHONUNBUFFERED": "1",
        "LOCAL_SCHEDULES": "on",  # whatever the developer's shell says: the saga needs them
        # Short enough to watch an unpaid order expire, long enough to pay one.
        "CHECKOUT_HOLD_SECONDS": str(HOLD_SECONDS),
        # localstripe and moto's SES, as on a machine without a Stripe key.
        "STRIPE_SECRET_KEY": "",
        "STRIPE_WEBHOOK_SECRET": "",
        "REPORTS_BUCKET": "",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "storefront_dev.cli", "run", "--port", str(port)],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output()
    threading.Thread(target=output.collect, args=(process,), daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            _wait_until_healthy(client, process, output)
            stack = Stack(url, process, output, client, environment)
            client.headers["Authorization"] = (
                f"Bearer {stack.token('--sub', 'e2e-admin', '--admin')}"
            )
            yield stack
    finally:
        if process.poll() is None:
            # Ctrl-C, as a developer stops it: the stack stops what it started
            # (localstripe is a process of its own). A kill only if it hangs.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_healthy(client: httpx.Client, process: subprocess.Popen[str], out: Output) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"storefront run exited with {process.returncode}:\n{out.text}")
        try:
            if client.get("/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the stack did not answer /health within {STARTUP_TIMEOUT}s:\n{out.text}")


def test_health(stack: Stack) -> None:
    response = stack.client.get("/health")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")


def test_the_apis_one_document_is_served_as_deployed(stack: Stack) -> None:
    response = stack.client.get("/openapi.json")
    assert response.status_code == 200
    assert {"/products", "/orders", "/reports"} <= set(response.json()["paths"])
    assert stack.client.get("/docs").status_code == 200


def test_products_lists_the_demo_catalog(stack: Stack) -> None:
    response = stack.client.get("/products", params={"limit": 100})
    assert response.status_code == 200
    skus = {item["sku"] for item in response.json()["items"]}
    demo_skus = {sku for items in DEMO_CATALOG.values() for sku, *_ in items}
    assert demo_skus <= skus
    assert all(isinstance(item["price"], str) for item in response.json()["items"])


def test_a_created_product_can_be_read_back(stack: Stack) -> None:
    new = {"sku": "E2E-TRAVEL-MUG", "name": "Travel Mug", "price": "19.90"}
    created = stack.client.post("/products", json=new)
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location == f"/products/{created.json()['id']}"

    fetched = stack.client.get(location)
    assert fetched.status_code == 200
    assert {key: fetched.json()[key] for key in new} == new


def test_an_unknown_route_is_a_problem_like_any_other(stack: Stack) -> None:
    response = stack.client.get("/no/such/route")
    wrong_method = stack.client.put("/categories", json={})

    # The $default route sends it to the catalog function: problem+json with
    # the security headers, not API Gateway's bare {"message": "Not Found"}.
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert wrong_method.status_code == 405
    assert "GET" in wrong_method.headers["allow"]


def test_head_reaches_the_function_that_serves_the_get(stack: Stack) -> None:
    alice = _bearer(stack.token("--sub", "alice-head"))

    # /orders is the orders function's (the template's HEAD routes), /products
    # the catalog's (through $default).
    orders = stack.client.head("/orders", headers=alice)
    anonymous = httpx.head(f"{stack.url}/orders", timeout=10)
    products = stack.client.head("/products")

    assert orders.status_code == 200
    assert orders.headers["content-type"] == "application/json"
    assert anonymous.status_code == 401
    assert products.status_code == 200
    assert products.headers["x-content-type-options"] == "nosniff"
    assert orders.content == anonymous.content == products.content == b""


def test_responses_carry_a_correlation_id(stack: Stack) -> None:
    given = stack.client.get("/health", headers={"X-Correlation-Id": "e2e-correlation-1"})
    assert given.headers["x-correlation-id"] == "e2e-correlation-1"
    # Without one, the function uses API Gateway's request id.
    generated = stack.client.get("/health")
    assert generated.headers["x-correlation-id"] == generated.headers["apigw-requestid"]


def test_invocations_are_reported_like_lambda(stack: Stack) -> None:
    stack.client.get("/health")
    stack.client.get("/health")
    text = stack.output.wait_for("REPORT RequestId")
    # The catalog function's own: scheduled functions report into the same output.
    reports = _reports_of("CatalogApiFunction", text)
    assert len(reports) >= 2
    # One container, one cold start.
    assert sum("Init Duration" in line for line in reports) == 1
    assert "Init Duration" in reports[0]


def test_a_placed_order_is_confirmed_by_the_scheduled_functions(stack: Stack) -> None:
    client = stack.client
    product = {"sku": "E2E-SAGA-KETTLE", "name": "Kettle", "price": "39.00"}
    created = client.post("/products", json=product)
    assert created.status_code == 201, created.text
    product_id = created.json()["id"]
    stocked = client.put(f"/products/{product_id}/stock", json={"on_hand": 5})
    assert stocked.status_code == 200, stocked.text

    items = [{"product_id": product_id, "quantity": 2}]
    alice = {"Authorization": f"Bearer {stack.token('--sub', 'alice')}"}
    placed = client.post("/orders", json={"items": items}, headers=alice)
    assert placed.status_code == 201, placed.text
    placed_at = time.monotonic()
    order_id = placed.json()["id"]
    assert placed.json()["customer_id"] == "alice"

    order = _wait_for_order(stack, order_id, until={"CONFIRMED", "REJECTED", "CANCELLED"})
    mine = client.get(f"/orders/{order_id}", headers=alice)
    others = client.get(f"/orders/{order_id}", headers=_bearer(stack.token("--sub", "bob")))
    assert (mine.status_code, others.status_code) == (200, 404)
    # For the record, not asserted: how long the saga took, as polled and as stored.
    stored = datetime.fromisoformat(order["updated_at"]) - datetime.fromisoformat(
        order["created_at"]
    )
    print(
        f"order {order['status']} {time.monotonic() - placed_at:.2f} s after POST returned"
        f" (updated_at - created_at: {stored.total_seconds():.3f} s)"
    )
    assert order["status"] == "CONFIRMED"
    stock = client.get(f"/products/{product_id}/stock")
    assert stock.status_code == 200
    assert {key: stock.json()[key] for key in ("on_hand", "reserved", "available")} == {
        "on_hand": 5,
        "reserved": 2,
        "available": 3,
    }
    # Carried there by the scheduled functions, invoked as EventBridge would.
    for function_id in ("OutboxRelayFunction", "InventoryWorkerFunction", "OrderWorkerFunction"):
        assert f"SCHEDULE {function_id} rate(1 minute)" in stack.output.text


def test_writes_need_a_token_through_the_gateway(stack: Stack) -> None:
    new = {"sku": "E2E-ANONYMOUS", "name": "Anonymous mug", "price": "1.00"}
    anonymous = httpx.post(f"{stack.url}/products", json=new, timeout=10)
    customer = stack.client.post("/products", json=new, headers=_bearer(stack.token("--sub", "c")))

    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert customer.status_code == 403


def test_a_checkout_is_paid_confirmed_emailed_and_refunded_as_the_readme_says(
    stack: Stack,
) -> None:
    """The README's walk-through: cart, checkout, `storefront pay` (the SDK on
    localstripe), its webhook, CONFIRMED, one email; then a cancel refunds it."""
    product_id = _stocked_product(stack, "E2E-CHECKOUT-MUG", on_hand=5)
    order_id = _checkout(stack, "carol", product_id, quantity=2)

    awaiting = _wait_for(stack, order_id, lambda order: order["payment"] is not None)
    assert awaiting["status"] == "AWAITING_PAYMENT"
    assert awaiting["payment"]["client_secret"].startswith(awaiting["payment"]["intent_id"])
    paid = stack.cli("pay", order_id)
    confirmed = _wait_for_order(stack, order_id, until={"CONFIRMED", "PAYMENT_FAILED"})
    emails = _wait_for_emails(stack, "carol@example.com", count=1)

    assert "succeeded" in paid
    assert confirmed["status"] == "CONFIRMED"
    assert emails == [f"Order {order_id[-8:].upper()} is confirmed"]
    assert _stock(stack, product_id)["reserved"] == 2

    cancelled = stack.client.post(f"/orders/{order_id}/cancel")
    refunded = _wait_for(stack, order_id, lambda order: order["payment"]["refunded"])
    assert cancelled.json()["status"] == "CANCELLED"
    assert refunded["status"] == "CANCELLED"
    assert _stock(stack, product_id)["reserved"] == 0


def test_an_unpaid_checkout_expires_and_a_declined_one_fails(stack: Stack) -> None:
    product_id = _stocked_product(stack, "E2E-CHECKOUT-TEA", on_hand=2)
    unpaid = _checkout(stack, "dave", product_id, quantity=1)
    declined = _checkout(stack, "dave", product_id, quantity=1)
    assert _stock(stack, product_id)["available"] == 0

    _wait_for(stack, declined, lambda order: order["payment"] is not None)
    stack.cli("pay", declined, "--card", "4000000000000341")
    failed = _wait_for_order(stack, declined, until={"PAYMENT_FAILED", "CONFIRMED"})
    expired = _wait_for_order(
        stack, unpaid, until={"EXPIRED", "CONFIRMED"}, timeout=HOLD_SECONDS + SAGA_TIMEOUT
    )

    assert failed["status"] == "PAYMENT_FAILED"
    assert expired["status"] == "EXPIRED"
    assert _wait_for(stack, unpaid, lambda order: order["payment"]["status"] == "canceled")
    assert _stock(stack, product_id)["available"] == 2  # both holds released
    assert len(_wait_for_emails(stack, "dave@example.com", count=2)) == 2


def test_sigint_stops_everything_cleanly(stack: Stack) -> None:
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=10) == 0
    stack.output.wait_for("stopped (SIGINT)")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{stack.url}/health", timeout=1)


def _stocked_product(stack: Stack, sku: str, on_hand: int) -> str:
    created = stack.client.post("/products", json={"sku": sku, "name": sku, "price": "9.50"})
    assert created.status_code == 201, created.text
    product_id = str(created.json()["id"])
    stocked = stack.client.put(f"/products/{product_id}/stock", json={"on_hand": on_hand})
    assert stocked.status_code == 200, stocked.text
    return product_id


def _stock(stack: Stack, product_id: str) -> dict[str, Any]:
    return dict(stack.client.get(f"/products/{product_id}/stock").json())


def _checkout(stack: Stack, subject: str, product_id: str, quantity: int) -> str:
    """Fill the customer's cart and check it out, as the README does."""
    customer = _bearer(stack.token("--sub", subject))
    line = stack.client.put(
        f"/cart/items/{product_id}", json={"quantity": quantity}, headers=customer
    )
    assert line.status_code == 200, line.text
    placed = stack.client.post(
        "/checkout",
        json={"email": f"{subject}@example.com"},
        headers=customer | {"Idempotency-Key": secrets.token_hex(8)},
    )
    assert placed.status_code == 201, placed.text
    return str(placed.json()["id"])


def _wait_for(
    stack: Stack, order_id: str, condition: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The order (read as an admin) once ``condition`` holds; fails after SAGA_TIMEOUT."""
    deadline = time.monotonic() + SAGA_TIMEOUT
    order: dict[str, Any] = {}
    while time.monotonic() < deadline:
        order = stack.client.get(f"/orders/{order_id}").json()
        if condition(order):
            return order
        time.sleep(0.2)
    pytest.fail(f"order {order_id} never reached the state awaited: {order}")


def _wait_for_emails(stack: Stack, to: str, count: int) -> list[str]:
    """The subjects of the emails sent to ``to``, once there are ``count`` of them,
    from `storefront emails` as the README has developers run it."""
    deadline = time.monotonic() + SAGA_TIMEOUT
    subjects: list[str] = []
    while time.monotonic() < deadline:
        listed = stack.cli("emails").splitlines()
        subjects = [line.split(": ", 1)[1] for line in listed if f"-> {to}:" in line]
        if len(subjects) >= count:
            return subjects
        time.sleep(0.3)
    pytest.fail(f"{len(subjects)} emails to {to}, not {count}: {subjects}")


def _wait_for_order(
    stack: Stack, order_id: str, until: set[str], timeout: float = SAGA_TIMEOUT
) -> dict[str, Any]:
    """The order once its status is one of ``until``; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        response = stack.client.get(f"/orders/{order_id}")
        assert response.status_code == 200, response.text
        order: dict[str, Any] = response.json()
        status = order["status"]
        if status in until:
            return order
        time.sleep(0.1)
    # What the scheduled functions did, without the polling requests' lines.
    said = [
        line
        for line in stack.output.text.splitlines()
        if line.startswith("SCHEDULE") or "rror" in line or "timed out" in line
    ]
    story = "\n".join(said[-60:])
    pytest.fail(f"order {order_id} still {status} after {timeout} s; schedules:\n{story}")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _reports_of(function_id: str, text: str) -> list[str]:
    """REPORT lines of one function's invocations, found through the gateway's log."""
    served = f"-> {function_id} "  # gateway: "GET /health" 200 3.1 ms -> Function <request id>
    request_ids = {
        line.split(served, 1)[1].split()[0] for line in text.splitlines() if served in line
    }
    return [
        line
        for line in text.splitlines()
        if line.startswith("REPORT RequestId") and line.split()[2] in request_ids
    ]
