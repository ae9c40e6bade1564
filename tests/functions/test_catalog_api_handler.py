"""The catalog function's handler, invoked as Lambda does, on real servers."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import pytest
from sqlalchemy.pool import QueuePool

from storefront import runtime
from tests.functions.conftest import Invoke, load_event


def test_health_event(invoke_catalog: Invoke) -> None:
    response = invoke_catalog(load_event("catalog_api", "health"))

    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"status": "ok"}
    assert response["headers"]["x-correlation-id"] == "sample-health"


def test_sample_events_answer(invoke_catalog: Invoke, admin_headers: dict[str, str]) -> None:
    created = invoke_catalog(load_event("catalog_api", "create_category", admin_headers))
    listed = invoke_catalog(load_event("catalog_api", "get_products"))
    missing = invoke_catalog(load_event("catalog_api", "get_product"))

    assert created["statusCode"] in {201, 409}  # 409 when the suite ran it before
    assert listed["statusCode"] == 200
    assert "items" in json.loads(listed["body"])
    assert missing["statusCode"] == 404
    # problem+json is text: API Gateway must not receive it base64-encoded
    assert missing["isBase64Encoded"] is False
    assert missing["headers"]["content-type"] == "application/problem+json"


def test_post_then_get_through_the_handler(
    invoke_catalog: Invoke, admin_headers: dict[str, str]
) -> None:
    event = load_event("catalog_api", "create_product", admin_headers)
    event["body"] = json.dumps({"sku": "FN-1", "name": "Handler mug", "price": "3.10"})
    created = invoke_catalog(event)
    assert created["statusCode"] == 201, created["body"]
    product_id = json.loads(created["body"])["id"]

    get = load_event("catalog_api", "get_product")
    get["rawPath"] = get["requestContext"]["http"]["path"] = f"/products/{product_id}"
    get["pathParameters"] = {"product_id": product_id}
    first, second = invoke_catalog(get), invoke_catalog(get)

    # The write put the product into the cache: reading it back is a hit.
    assert (first["statusCode"], first["headers"]["x-cache"]) == (200, "hit")
    assert (second["statusCode"], second["headers"]["x-cache"]) == (200, "hit")
    assert json.loads(second["body"]) == json.loads(created["body"])


def test_bad_body_is_a_problem_not_a_trace(
    invoke_catalog: Invoke, admin_headers: dict[str, str]
) -> None:
    event = load_event("catalog_api", "create_product", admin_headers)
    event["body"] = json.dumps({"sku": "FN-2", "name": "Float", "price": 1.5})
    response = invoke_catalog(event)

    assert response["statusCode"] == 422
    problem = json.loads(response["body"])
    assert problem["errors"][0]["field"] == "price"
    assert "Traceback" not in response["body"]


def test_warm_invocations_reuse_loop_engine_and_redis(invoke_catalog: Invoke) -> None:
    event = load_event("catalog_api", "get_products")
    invoke_catalog(event)
    loop = runtime.container_loop()
    resources = runtime.container_resources()
    engine, redis = resources.engine, resources.redis

    invoke_catalog(event)

    assert runtime.container_loop() is loop
    assert not loop.is_closed()
    assert runtime.container_resources() is resources
    assert resources.engine is engine
    assert resources.redis is redis
    # a pool sized for one request at a time, kept warm between invocations
    pool = cast(QueuePool, engine.pool)
    assert pool.checkedout() == 0
    assert pool.checkedin() >= 1


def test_handler_never_calls_asyncio_run(
    invoke_catalog: Invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []

    def forbidden(*args: object, **kwargs: object) -> None:
        calls.append(args)
        raise AssertionError("asyncio.run closes the container's loop")

    monkeypatch.setattr(asyncio, "run", forbidden)
    response = invoke_catalog(load_event("catalog_api", "get_products"))

    assert response["statusCode"] == 200
    assert calls == []


def test_a_write_without_a_token_is_a_401_through_the_handler(invoke_catalog: Invoke) -> None:
    response = invoke_catalog(load_event("catalog_api", "create_product"))

    assert response["statusCode"] == 401
    assert response["headers"]["content-type"] == "application/problem+json"
    assert response["headers"]["www-authenticate"] == "Bearer"


def test_bodiless_answers_carry_no_content_type(
    invoke_catalog: Invoke, admin_headers: dict[str, str]
) -> None:
    event = load_event("catalog_api", "create_product", admin_headers)
    event["body"] = json.dumps({"sku": "FN-BODILESS", "name": "Quiet mug", "price": "2.00"})
    product_id = json.loads(invoke_catalog(event)["body"])["id"]

    def request(method: str, path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        sent = load_event("catalog_api", "get_product", headers)
        sent["rawPath"] = sent["requestContext"]["http"]["path"] = path
        sent["requestContext"]["http"]["method"] = method
        return invoke_catalog(sent)

    fresh = request("GET", f"/products/{product_id}")
    answers = {
        "viewed": request("POST", f"/products/{product_id}/views"),
        "unchanged": request(
            "GET", f"/products/{product_id}", {"if-none-match": fresh["headers"]["etag"]}
        ),
        "deleted": request("DELETE", f"/products/{product_id}", admin_headers),
    }

    assert {name: answer["statusCode"] for name, answer in answers.items()} == {
        "viewed": 202,
        "unchanged": 304,
        "deleted": 204,
    }
    for name, answer in answers.items():
        assert not answer.get("body"), name
        assert "content-type" not in answer["headers"], name
    assert fresh["headers"]["content-type"] == "application/json"
