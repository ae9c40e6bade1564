"""A client generated from the served document walks the API, with no hand edits.

The local stack (as ``make run`` starts it, through tests/e2e's helper) serves
the API's one OpenAPI document at ``GET /openapi.json``; openapi-python-client
turns it into a package in a temporary folder, and the tests talk to the stack
only through that package. The clients raise on any status the document does
not declare (``raise_on_unexpected_status``), so every answer seen here,
a 304, a 303 or a problem, is one the document promised.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.conftest import own_database
from tests.e2e.test_local_stack import Stack, _running_stack

pytestmark = pytest.mark.e2e

PACKAGE = "storefront_api_client"
GENERATOR_TIMEOUT = 60.0
# A bound on a functional wait (the report worker builds a report of an empty
# day in well under a second), not a speed test.
REPORT_TIMEOUT = 20.0


@dataclass(frozen=True)
class Generated:
    """The generated package, imported: its models and operations are untyped (Any)."""

    package: ModuleType
    url: str

    @property
    def models(self) -> Any:
        return importlib.import_module(f"{self.package.__name__}.models")

    def operation(self, tag: str, name: str) -> Any:
        """The module of one operation: ``sync_detailed(client=..., ...)`` and friends."""
        return importlib.import_module(f"{self.package.__name__}.api.{tag}.{name}")

    def client(self, token: str | None = None, transport: httpx.BaseTransport | None = None) -> Any:
        """A client that raises ``UnexpectedStatus`` on any undeclared status;
        ``transport`` answers in place of the stack."""
        client_module = importlib.import_module(f"{self.package.__name__}.client")
        if token is None:
            return client_module.Client(
                base_url=self.url,
                timeout=httpx.Timeout(10.0),
                raise_on_unexpected_status=True,
                httpx_args={"transport": transport} if transport else {},
            )
        return client_module.AuthenticatedClient(
            base_url=self.url,
            token=token,
            timeout=httpx.Timeout(10.0),
            raise_on_unexpected_status=True,
        )


@pytest.fixture(scope="module")
def stack(database_server_url: str, redis_url: str, redis_key_prefix: str) -> Iterator[Stack]:
    with own_database(database_server_url, "client", migrated=False) as database_url:
        yield from _running_stack(database_url, redis_url, f"{redis_key_prefix}client:")


@pytest.fixture(scope="module")
def generated(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    folder = tmp_path_factory.mktemp("generated-client")
    served = stack.client.get("/openapi.json")
    assert served.status_code == 200, served.text
    document = folder / "openapi.json"
    document.write_bytes(served.content)

    # The venv's bin first: the generator formats its output with ruff (a post
    # hook), and warns when it finds none.
    bin_folder = str(Path(sys.executable).parent)
    environment = {**os.environ, "PATH": os.pathsep.join([bin_folder, os.environ["PATH"]])}
    command = [sys.executable, "-m", "openapi_python_client", "generate"]
    command += ["--path", str(document), "--output-path", str(folder / PACKAGE), "--meta", "none"]
    result = subprocess.run(
        command,
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=GENERATOR_TIMEOUT,
        check=False,
    )
    said = result.stdout + result.stderr
    assert result.returncode == 0, said
    # "Warning(s) encountered while generating": a schema or operation it skipped.
    assert "warning" not in said.lower(), said

    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(folder))
        try:
            package = importlib.import_module(PACKAGE)
            yield Generated(package, stack.url)
        finally:
            for name in [name for name in sys.modules if name.partition(".")[0] == PACKAGE]:
                del sys.modules[name]


@pytest.fixture(scope="module")
def admin(stack: Stack, generated: Generated) -> Any:
    """The generated client, with the stack's admin token (``storefront token --admin``)."""
    token = stack.client.headers["Authorization"].removeprefix("Bearer ")
    return generated.client(token)


@pytest.fixture(scope="module")
def customer(stack: Stack, generated: Generated) -> Any:
    return generated.client(stack.token("--sub", "client-customer"))


def _unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


def _create_product(generated: Generated, admin: Any, **fields: Any) -> Any:
    create = generated.operation("catalog", "create_product_products_post")
    body = generated.models.NewProduct(sku=_unique("CLIENT").upper(), **fields)
    created = create.sync_detailed(client=admin, body=body)
    assert created.status_code == 201, created.content
    assert isinstance(created.parsed, generated.models.Product)
    return created.parsed


def test_catalog_crud(generated: Generated, admin: Any) -> None:
    models = generated.models
    create_category = generated.operation("catalog", "create_category_categories_post")
    category = create_category.sync_detailed(
        client=admin, body=models.NewCategory(name=_unique("Client mugs"))
    )
    assert category.status_code == 201, category.content
    assert isinstance(category.parsed, models.Category)
    assert category.headers["location"] == f"/categories/{category.parsed.id}"
    get_category = generated.operation("catalog", "get_category_categories_category_id_get")
    assert get_category.sync(category.parsed.id, client=admin).name == category.parsed.name

    category_id = category.parsed.id
    products = [
        _create_product(generated, admin, name=f"Mug {n}", price="12.50", category_id=category_id)
        for n in range(3)
    ]
    product = products[0]
    assert (product.price, product.currency, product.category_id) == ("12.50", "EUR", category_id)

    get_product = generated.operation("catalog", "get_product_products_product_id_get")
    fetched = get_product.sync_detailed(product.id, client=admin)
    assert fetched.status_code == 200
    assert fetched.parsed.to_dict() == product.to_dict()
    assert fetched.headers["etag"]

    update = generated.operation("catalog", "update_product_products_product_id_patch")
    changed = update.sync_detailed(
        product.id, client=admin, body=models.ProductChanges(price="13.00", name="Big mug")
    )
    assert changed.status_code == 200, changed.content
    assert (changed.parsed.price, changed.parsed.name, changed.parsed.sku) == (
        "13.00",
        "Big mug",
        product.sku,
    )

    # Two at a time: the category's three products take two pages.
    list_products = generated.operation("catalog", "list_products_products_get")
    seen: list[uuid.UUID] = []
    pages = 0
    cursor: Any = None
    while True:
        page = list_products.sync(client=admin, category_id=category_id, limit=2, cursor=cursor)
        assert isinstance(page, models.ProductPage)
        pages += 1
        seen += [item.id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 2
    assert sorted(seen) == sorted(item.id for item in products)

    delete = generated.operation("catalog", "delete_product_products_product_id_delete")
    deleted = delete.sync_detailed(product.id, client=admin)
    assert deleted.status_code == 204
    gone = get_product.sync_detailed(product.id, client=admin)
    assert gone.status_code == 404
    assert isinstance(gone.parsed, models.Problem)


def test_a_conditional_read_of_a_current_copy_is_304(generated: Generated, admin: Any) -> None:
    product = _create_product(generated, admin, name="Conditional mug", price="5.00")
    get_product = generated.operation("catalog", "get_product_products_product_id_get")
    first = get_product.sync_detailed(product.id, client=admin)
    etag = first.headers["etag"]

    again = get_product.sync_detailed(product.id, client=admin, if_none_match=etag)
    assert again.status_code == 304
    assert again.parsed is None
    assert again.headers["etag"] == etag
    # Reads need no token: the plain Client works where the type says AuthenticatedClient.
    anonymous = get_product.sync_detailed(product.id, client=generated.client())
    assert (anonymous.status_code, anonymous.parsed.sku) == (200, product.sku)

    list_products = generated.operation("catalog", "list_products_products_get")
    listed = list_products.sync_detailed(client=admin, limit=5)
    assert listed.status_code == 200
    unchanged = list_products.sync_detailed(
        client=admin, limit=5, if_none_match=listed.headers["etag"]
    )
    assert unchanged.status_code == 304
    assert unchanged.parsed is None


def test_stock_and_an_order_placed_replayed_and_cancelled(
    generated: Generated, admin: Any, customer: Any
) -> None:
    models = generated.models
    product = _create_product(generated, admin, name="Order mug", price="7.25")
    set_stock = generated.operation("inventory", "set_stock_products_product_id_stock_put")
    stocked = set_stock.sync_detailed(product.id, client=admin, body=models.StockChange(on_hand=5))
    assert stocked.status_code == 200, stocked.content
    assert isinstance(stocked.parsed, models.StockLevel)
    get_stock = generated.operation("inventory", "get_stock_products_product_id_stock_get")
    level = get_stock.sync(product.id, client=admin)
    assert (level.product_id, level.on_hand) == (product.id, 5)

    place = generated.operation("orders", "place_order_orders_post")
    body = models.PlaceOrder(items=[models.RequestedItem(product_id=product.id, quantity=2)])
    key = str(uuid.uuid4())
    placed = place.sync_detailed(client=customer, body=body, idempotency_key=key)
    assert placed.status_code == 201, placed.content
    order = placed.parsed
    assert isinstance(order, models.Order)
    assert (order.customer_id, order.total, order.currency) == ("client-customer", "14.50", "EUR")
    assert placed.headers["location"] == f"/orders/{order.id}"
    assert placed.headers.get("idempotent-replayed") != "true"

    replayed = place.sync_detailed(client=customer, body=body, idempotency_key=key)
    assert replayed.status_code == 201
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.parsed.id == order.id

    cancel = generated.operation("orders", "cancel_order_orders_order_id_cancel_post")
    cancelled = cancel.sync_detailed(order.id, client=customer)
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.parsed.status == models.OrderStatus.CANCELLED
    twice = cancel.sync_detailed(order.id, client=customer)
    assert twice.status_code == 409
    assert isinstance(twice.parsed, models.Problem)

    get_order = generated.operation("orders", "get_order_orders_order_id_get")
    assert get_order.sync(order.id, client=admin).status == models.OrderStatus.CANCELLED


def test_a_report_from_request_to_download(generated: Generated, admin: Any) -> None:
    models = generated.models
    today = datetime.now(UTC).date()
    request = generated.operation("reports", "request_report_reports_post")
    body = models.RequestReport(type_=models.ReportType.ORDERS_BY_STATUS, from_=today, to=today)
    requested = request.sync_detailed(client=admin, body=body, idempotency_key=str(uuid.uuid4()))
    assert requested.status_code == 202, requested.content
    report = requested.parsed
    assert isinstance(report, models.Report)
    assert requested.headers["location"] == f"/reports/{report.id}"

    get_report = generated.operation("reports", "get_report_reports_report_id_get")
    deadline = time.monotonic() + REPORT_TIMEOUT
    while report.status == models.ReportStatus.PENDING and time.monotonic() < deadline:
        time.sleep(0.2)
        report = get_report.sync(report.id, client=admin)
    assert report.status == models.ReportStatus.READY, report.to_dict()

    # The generated client does not follow redirects: the 303 is the answer.
    download = generated.operation("reports", "download_report_reports_report_id_download_get")
    answer = download.sync_detailed(report.id, client=admin)
    assert answer.status_code == 303
    assert answer.parsed is None
    location = answer.headers["location"]
    assert "X-Amz-Signature=" in location
    # Presigned for moto's S3: it downloads without the API's token.
    content = httpx.get(location, timeout=10)
    assert content.status_code == 200, content.text
    assert content.headers["content-type"].startswith(report.content_type)


def test_problems_parse_as_the_one_problem_model(
    generated: Generated, admin: Any, customer: Any
) -> None:
    models = generated.models
    get_product = generated.operation("catalog", "get_product_products_product_id_get")
    unknown = uuid.uuid4()
    missing = get_product.sync_detailed(unknown, client=admin)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    problem = missing.parsed
    assert isinstance(problem, models.Problem)
    assert problem.status == 404
    assert str(unknown) in problem.detail

    create = generated.operation("catalog", "create_product_products_post")
    body = models.NewProduct(sku=_unique("CLIENT-DENIED"), name="Denied mug", price="1.00")
    denied = create.sync_detailed(client=customer, body=body)
    assert denied.status_code == 403
    assert isinstance(denied.parsed, models.Problem)
    anonymous = create.sync_detailed(client=generated.client(), body=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert isinstance(anonymous.parsed, models.Problem)

    list_products = generated.operation("catalog", "list_products_products_get")
    invalid = list_products.sync_detailed(client=admin, limit=0)
    assert invalid.status_code == 422
    assert isinstance(invalid.parsed, models.Problem)
    assert [error.field for error in invalid.parsed.errors] == ["limit"]


# What API Gateway answers by itself when no function could: throttled, the
# invocation refused, the function failed, the integration timed out. An HTTP
# API cannot reshape these.
GATEWAY_ANSWERS = [
    (429, "Too Many Requests"),
    (500, "Internal Server Error"),
    (502, "Internal Server Error"),
    (503, "Service Unavailable"),
]
# Statuses the API's own code answers too, with a problem.
OURS_TOO = {429, 500, 503}


@pytest.mark.parametrize(("status", "message"), GATEWAY_ANSWERS)
def test_api_gateways_own_answers_parse_too(
    generated: Generated, status: int, message: str
) -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"message": message})

    def function(request: httpx.Request) -> httpx.Response:
        body = {"type": "about:blank", "title": message, "status": status, "detail": "ours"}
        headers = {"content-type": "application/problem+json"}
        return httpx.Response(status, json=body, headers=headers)

    get_order = generated.operation("orders", "get_order_orders_order_id_get")
    client = generated.client(transport=httpx.MockTransport(gateway))
    answered = get_order.sync_detailed(uuid.uuid4(), client=client)
    assert isinstance(answered.parsed, generated.models.GatewayError)
    assert answered.parsed.message == message
    if status not in OURS_TOO:
        return
    client = generated.client(transport=httpx.MockTransport(function))
    answered = get_order.sync_detailed(uuid.uuid4(), client=client)
    assert isinstance(answered.parsed, generated.models.Problem)
    assert answered.parsed.detail == "ours"
