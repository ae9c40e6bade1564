"""POST /payments/stripe/webhook (storefront.payments.webhook and .api),
served by the orders function, with bodies signed as Stripe signs them."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import boto3
import httpx
import pytest
from fastapi import FastAPI

from storefront import wiring
from storefront.adapters.endpoints import read_secret
from storefront.observability import metrics
from storefront.payments import StripeGateway
from storefront.payments.domain import PaymentRecord
from storefront.payments.events import PaymentFailed, PaymentSucceeded
from storefront.payments.service import request_payment
from storefront.payments.unit_of_work import SqlPaymentsUnitOfWork
from storefront.resources import Resources
from storefront.settings import Settings
from storefront_dev.embedded import EmbeddedS3, free_port
from tests.payments.conftest import TEST_SECRET_KEY, LocalStripe
from tests.payments.shop import (
    SECRET,
    WEBHOOK,
    intent_event,
    outbox_events,
    pay,
    payment_of,
    place_order,
    record_payment,
    recorded_stripe_events,
    signature,
    stripe_event_about,
)

pytestmark = pytest.mark.usefixtures("no_orders")

TOLERANCE = 300
PAYMENT_EVENTS = (PaymentSucceeded.event_type, PaymentFailed.event_type)


@pytest.fixture(scope="module")
def webhook_settings(settings: Settings) -> Settings:
    # Limits so low that a metered route would answer 429 by the third request.
    return settings.model_copy(
        update={
            "stripe_webhook_secret": SECRET,
            "stripe_webhook_tolerance_seconds": TOLERANCE,
            "rate_limit_write": "2/minute",
            "rate_limit_anonymous": "2/minute",
        }
    )


@pytest.fixture(scope="module")
async def webhook_resources(webhook_settings: Settings) -> AsyncIterator[Resources]:
    resources = Resources.from_settings(webhook_settings)
    yield resources
    await resources.close()


@pytest.fixture(scope="module")
def app(webhook_resources: Resources) -> FastAPI:
    return wiring.orders_app(lambda: webhook_resources)


@pytest.fixture
async def stripe_calls(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Stripe, calling the webhook: no token, of course."""
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 443))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def send(
    client: httpx.AsyncClient, body: str | dict[str, Any], header: str | None = "sign"
) -> httpx.Response:
    """POST ``body``, signed now with the secret unless ``header`` is given (None: unsigned)."""
    text = body if isinstance(body, str) else json.dumps(body)
    headers = {"Content-Type": "application/json"}
    if header == "sign":
        headers["Stripe-Signature"] = signature(text)
    elif header is not None:
        headers["Stripe-Signature"] = header
    return await client.post(WEBHOOK, content=text.encode(), headers=headers)


async def on_record(resources: Resources, status: str = "requires_payment_method") -> PaymentRecord:
    """An order awaiting payment, with an intent on record."""
    order = await place_order(resources.engine)
    record = PaymentRecord(
        order_id=order.order_id,
        intent_id=f"pi_{order.order_id.hex[:14]}",
        client_secret=f"pi_{order.order_id.hex[:14]}_secret_abcdef",
        status=status,
        amount=1999,
        currency="EUR",
    )
    await record_payment(resources.engine, record)
    return record


def payments(events: list[Any]) -> list[tuple[str, str, str]]:
    return [(e.event_type, e.aggregate_id, e.payload["intent_id"]) for e in events]


async def test_a_payment_made_at_the_provider_is_announced_for_its_order_once(
    stripe_calls: httpx.AsyncClient,
    webhook_resources: Resources,
    webhook_settings: Settings,
    localstripe: LocalStripe,
) -> None:
    engine = webhook_resources.engine
    order = await place_order(engine, Decimal("19.99"))
    gateway = StripeGateway.from_settings(
        Settings(stripe_secret_key=TEST_SECRET_KEY, stripe_api_base=localstripe.url)
    )
    async with SqlPaymentsUnitOfWork(engine, webhook_settings) as uow:
        record = await request_payment(order.order_id, order.total, order.currency, uow, gateway)
        await uow.commit()
    assert record is not None
    await pay(localstripe, record.intent_id)
    body = await stripe_event_about(localstripe, "payment_intent.succeeded", record.intent_id)

    first = await send(stripe_calls, body)
    again = await send(stripe_calls, body)  # Stripe retries; or a replay within the tolerance

    assert first.status_code == 200, first.text
    event_id = json.loads(body)["id"]
    assert first.json() == {"event_id": event_id, "outcome": "applied"}
    assert again.status_code == 200
    assert again.json() == {"event_id": event_id, "outcome": "duplicate"}
    paid = await payment_of(engine, order.order_id)
    assert paid is not None
    assert paid.status == "succeeded"
    (announced,) = await outbox_events(engine, *PAYMENT_EVENTS)
    assert payments([announced]) == [("PaymentSucceeded", str(order.order_id), record.intent_id)]
    assert announced.aggregate_type == "order"
    assert await recorded_stripe_events(engine) == [(event_id, "payment_intent.succeeded")]


async def test_a_declined_payment_fails_the_orders_payment_with_its_reason(
    stripe_calls: httpx.AsyncClient, webhook_resources: Resources
) -> None:
    record = await on_record(webhook_resources)
    declined = intent_event(
        "payment_intent.payment_failed",
        record.intent_id,
        "requires_payment_method",
        last_payment_error={
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
        },
    )

    response = await send(stripe_calls, declined)

    assert response.json()["outcome"] == "applied"
    (failed,) = await outbox_events(webhook_resources.engine, *PAYMENT_EVENTS)
    assert failed.event_type == "PaymentFailed"
    assert failed.aggregate_id == str(record.order_id)
    assert failed.payload["reason"] == "insufficient_funds: Your card has insufficient funds."
    current = await payment_of(webhook_resources.engine, record.order_id)
    assert current is not None
    assert current.status == "requires_payment_method"


async def test_a_failure_after_the_success_changes_nothing(
    stripe_calls: httpx.AsyncClient, webhook_resources: Resources
) -> None:
    record = await on_record(webhook_resources)
    succeeded = intent_event("payment_intent.succeeded", record.intent_id, "succeeded")
    # An earlier attempt's failure, delivered late (Stripe does not keep order).
    failed = intent_event(
        "payment_intent.payment_failed", record.intent_id, "requires_payment_method"
    )

    assert (await send(stripe_calls, succeeded)).json()["outcome"] == "applied"
    late = await send(stripe_calls, failed)

    assert late.status_code == 200
    assert late.json()["outcome"] == "ignored"
    current = await payment_of(webhook_resources.engine, record.order_id)
    assert current is not None
    assert current.status == "succeeded"
    assert [
        e.event_type for e in await outbox_events(webhook_resources.engine, *PAYMENT_EVENTS)
    ] == ["PaymentSucceeded"]
    assert {
        event_type for _, event_type in await recorded_stripe_events(webhook_resources.engine)
    } == {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
    }


async def test_a_success_after_the_cancellation_changes_nothing(
    stripe_calls: httpx.AsyncClient, webhook_resources: Resources
) -> None:
    record = await on_record(webhook_resources)
    canceled = intent_event(
        "payment_intent.canceled",
        record.intent_id,
        "canceled",
        cancellation_reason="abandoned",
    )
    succeeded = intent_event("payment_intent.succeeded", record.intent_id, "succeeded")

    assert (await send(stripe_calls, canceled)).json()["outcome"] == "applied"
    late = await send(stripe_calls, succeeded)

    assert late.json()["outcome"] == "ignored"
    current = await payment_of(webhook_resources.engine, record.order_id)
    assert current is not None
    assert current.status == "canceled"
    (failed,) = await outbox_events(webhook_resources.engine, *PAYMENT_EVENTS)
    assert (failed.event_type, failed.payload["reason"]) == (
        "PaymentFailed",
        "canceled (abandoned)",
    )


async def test_unknown_types_and_intents_are_recorded_and_ignored(
    stripe_calls: httpx.AsyncClient, webhook_resources: Resources
) -> None:
    other_type = {
        "id": "evt_customer_1",
        "object": "event",
        "type": "customer.created",
        "data": {"object": {"id": "cus_1", "object": "customer"}},
    }
    unknown_intent = intent_event("payment_intent.succeeded", "pi_not_ours", "succeeded")

    answers = [await send(stripe_calls, other_type), await send(stripe_calls, unknown_intent)]

    assert [(a.status_code, a.json()["outcome"]) for a in answers] == [
        (200, "ignored"),
        (200, "ignored"),
    ]
    assert sorted(await recorded_stripe_events(webhook_resources.engine)) == sorted(
        [("evt_customer_1", "customer.created"), (unknown_intent["id"], "payment_intent.succeeded")]
    )
    assert await outbox_events(webhook_resources.engine, *PAYMENT_EVENTS) == []


async def test_an_intent_not_on_record_finds_its_order_in_its_metadata(
    stripe_calls: httpx.AsyncClient, webhook_resources: Resources
) -> None:
    order = await place_order(webhook_resources.engine)
    succeeded = intent_event(
        "payment_intent.succeeded",
        "pi_unrecorded",
        "succeeded",
        metadata={"order_id": str(order.order_id)},
    )
    stranger = intent_event(
        "payment_intent.succeeded",
        "pi_stranger",
        "succeeded",
        metadata={"order_id": "5b0f0c6e-0000-4000-8000-000000000000"},  # no order of ours
    )

    assert (await send(stripe_calls, succeeded)).json()["outcome"] == "applied"
    assert (await send(stripe_calls, stranger)).json()["outcome"] == "ignored"

    assert payments(await outbox_events(webhook_resources.engine, *PAYMENT_EVENTS)) == [
        ("PaymentSucceeded", str(order.order_id), "pi_unrecorded")
    ]


async def refused_and_nothing_changed(
    response: httpx.Response, resources: Resources, record: PaymentRecord
) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 400
    assert await recorded_stripe_events(resources.engine) == []
    assert await outbox_events(resources.engine, *PAYMENT_EVENTS) == []
    assert await payment_of(resources.engine, record.order_id) == record


async def test_a_forged_signature_is_refused_and_changes_nothing(
    stripe_calls: httpx.AsyncClient, webhook_resources: Resources
) -> None:
    record = await on_record(webhook_resources)
    body = json.dumps(intent_event("payment_intent.succeeded", record.intent_id, "succeeded"))

    forged = await send(stripe_calls, body, signature(body, secret="whsec_someone_else"))

    await refused_and_nothing_changed(forged, webhook_resources, record)


async def test_a_body_changed_after_signing_is_refused(
    stripe_calls: httpx.AsyncClient, webhook_resources: Resources
) -> None:
    record = await on_record(webhook_resources)
    failed = intent_event(
        "payment_intent.payment_failed", record.intent_id, "requires_payment_method"
    )
    header = signature(json.dumps(failed))
    failed["type"] = "payment_intent.succeeded"
    failed["data"]["object"]["status"] = "succeeded"

    tampered = await send(stripe_calls, failed, header)

    await refused_and_nothing_changed(tampered, webhook_resources, record)


async def test_a_replay_signed_before_the_tolerance_is_refused(
    stripe_calls: httpx.AsyncClient, webhook_resources: Resources
) -> None:
    record = await on_record(webhook_resources)
    body = json.dumps(intent_event("payment_intent.succeeded", record.intent_id, "succeeded"))
    long_ago = int(time.time()) - TOLERANCE - 60

    replayed = await send(stripe_calls, body, signature(body, timestamp=long_ago))

    await refused_and_nothing_changed(replayed, webhook_resources, record)


@pytest.mark.parametrize("header", [None, "", "t=abc,v1=00", "v1=00", "t=1700000000", "nonsense"])
async def test_a_missing_or_malformed_signature_is_refused(
    stripe_calls: httpx.AsyncClient, webhook_resources: Resources, header: str | None
) -> None:
    record = await on_record(webhook_resources)
    body = intent_event("payment_intent.succeeded", record.intent_id, "succeeded")

    refused = await send(stripe_calls, body, header)

    await refused_and_nothing_changed(refused, webhook_resources, record)


@pytest.mark.parametrize(
    "body",
    ["not json", "[1, 2]", '{"id": "evt_1"}', '{"id": "evt_1", "type": "x", "data": 3}', ""],
)
async def test_a_signed_body_that_is_no_event_is_refused(
    stripe_calls: httpx.AsyncClient, webhook_resources: Resources, body: str
) -> None:
    record = await on_record(webhook_resources)

    refused = await send(stripe_calls, body)

    await refused_and_nothing_changed(refused, webhook_resources, record)


async def test_a_signed_body_that_is_not_utf8_is_refused(
    stripe_calls: httpx.AsyncClient, webhook_resources: Resources
) -> None:
    record = await on_record(webhook_resources)

    refused = await stripe_calls.post(
        WEBHOOK, content=b"\xff\xfe{}", headers={"Stripe-Signature": signature("x")}
    )

    await refused_and_nothing_changed(refused, webhook_resources, record)


async def test_the_webhook_is_not_rate_limited_and_takes_no_token(
    stripe_calls: httpx.AsyncClient, webhook_resources: Resources
) -> None:
    # Well past the 2/minute every metered route of this app has.
    answers = [
        await send(stripe_calls, intent_event("payment_intent.succeeded", f"pi_{n}", "succeeded"))
        for n in range(6)
    ]

    assert [answer.status_code for answer in answers] == [200] * 6
    assert all("RateLimit-Limit" not in answer.headers for answer in answers)
    operation = wiring.api_document()["paths"][WEBHOOK]["post"]
    assert operation["security"] == []
    # Only API Gateway's own throttling answers 429 here, never the function.
    gateway_only = {"application/json": {"schema": {"$ref": "#/components/schemas/GatewayError"}}}
    assert operation["responses"]["429"]["content"] == gateway_only
    assert "401" not in operation["responses"]
    assert "RateLimit-Limit" not in operation["responses"]["200"]["headers"]
    assert "Stripe-Signature" in [parameter["name"] for parameter in operation["parameters"]]


async def test_neither_the_signing_secret_nor_the_client_secret_is_logged(
    stripe_calls: httpx.AsyncClient,
    webhook_resources: Resources,
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = await on_record(webhook_resources)
    body = json.dumps(intent_event("payment_intent.succeeded", record.intent_id, "succeeded"))

    with caplog.at_level(logging.DEBUG):
        await send(stripe_calls, body, signature(body, secret="whsec_forged"))
        await send(stripe_calls, body)

    messages = [entry.getMessage() for entry in caplog.records]
    assert {"stripe webhook refused", "stripe event received"} <= set(messages)
    # Every field of every line, the extras included.
    logged = " ".join(str(vars(entry)) for entry in caplog.records)
    for secret in (SECRET, "whsec_forged", record.client_secret):
        assert secret not in logged


@pytest.fixture
def stored_secret(monkeypatch: pytest.MonkeyPatch, s3: EmbeddedS3) -> Iterator[str]:
    """A secret in the session's moto server (it serves every AWS service).
    Not ``mock_aws``: leaving it resets moto's state in this process, the
    session's S3 bucket included."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", s3.url)
    read_secret.cache_clear()
    created = boto3.client("secretsmanager").create_secret(
        Name=f"storefront/stripe-webhook-{uuid.uuid4()}",
        SecretString=json.dumps({"secret": SECRET}),
    )
    yield created["ARN"]
    read_secret.cache_clear()


async def test_the_signing_secret_may_live_in_secrets_manager(
    webhook_settings: Settings, stored_secret: str
) -> None:
    deployed = webhook_settings.model_copy(
        update={"stripe_webhook_secret": None, "stripe_webhook_secret_arn": stored_secret}
    )
    resources = Resources.from_settings(deployed)
    transport = httpx.ASGITransport(app=wiring.orders_app(lambda: resources))
    body = intent_event("payment_intent.succeeded", "pi_elsewhere", "succeeded")
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            accepted = await send(client, body)
            forged = await send(client, body, signature(json.dumps(body), secret="whsec_x"))
    finally:
        await resources.close()

    assert (accepted.status_code, forged.status_code) == (200, 400)


@pytest.fixture
def clean_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def metric(name: str) -> float:
    found = metrics.metric_set.get(name)
    return sum(found["Value"]) if found else 0.0


@pytest.mark.usefixtures("clean_metrics")
async def test_refused_calls_are_counted_for_the_alarm(stripe_calls: httpx.AsyncClient) -> None:
    body = json.dumps(intent_event("payment_intent.succeeded", "pi_counted", "succeeded"))

    await send(stripe_calls, body, signature(body, secret="whsec_forged"))
    await send(stripe_calls, body, None)
    await send(stripe_calls, body)

    assert metric("StripeWebhookRejected") == 2
    assert metric("StripeWebhookFailed") == 0


@pytest.mark.usefixtures("clean_metrics")
async def test_a_deployment_without_a_signing_secret_accepts_nothing(
    webhook_settings: Settings,
) -> None:
    unconfigured = webhook_settings.model_copy(update={"stripe_webhook_secret": None})
    resources = Resources.from_settings(unconfigured)
    transport = httpx.ASGITransport(app=wiring.orders_app(lambda: resources))
    body = intent_event("payment_intent.succeeded", "pi_unconfigured", "succeeded")
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            refused = await send(client, body)
    finally:
        await resources.close()

    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"
    assert metric("StripeWebhookRejected") == 1


@pytest.mark.usefixtures("clean_metrics")
async def test_a_verified_call_that_fails_inside_is_counted_and_retried_by_stripe(
    webhook_settings: Settings,
) -> None:
    nowhere = webhook_settings.model_copy(
        update={
            "database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/storefront",
            "database_connect_timeout": 1.0,
        }
    )
    resources = Resources.from_settings(nowhere)
    transport = httpx.ASGITransport(app=wiring.orders_app(lambda: resources))
    body = intent_event("payment_intent.succeeded", "pi_database_down", "succeeded")
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            failed = await send(client, body)
    finally:
        await resources.close()

    # Not 2xx: Stripe sends it again later.
    assert failed.status_code == 503
    assert metric("StripeWebhookFailed") == 1
    assert metric("StripeWebhookRejected") == 0
