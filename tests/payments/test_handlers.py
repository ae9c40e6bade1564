"""The payments worker (storefront.payments.handlers) on the real consumer,
PostgreSQL, Redis and localstripe: one PaymentIntent per order, cancelled or
refunded when the order will not be paid for, and nothing dead-lettered
while the provider is down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from uuid import UUID

import pytest

from storefront.adapters.circuit_breaker import CircuitBreaker
from storefront.adapters.database import UnitOfWork
from storefront.events.consumer import ConsumerStats, run_consumer
from storefront.events.dead_letters import list_dead_letters
from storefront.events.envelope import Event, Payload
from storefront.events.handlers import HandlerRegistry
from storefront.orders import OrderStatus
from storefront.orders.events import (
    OrderCancelled,
    OrderExpired,
    OrderPaymentFailed,
)
from storefront.payments import (
    Intent,
    PaymentGateway,
    PaymentProviderUnavailable,
    Refund,
    StripeGateway,
)
from storefront.payments.events import PaymentSucceeded
from storefront.payments.handlers import payment_handlers
from storefront.resources import Resources
from storefront.settings import Settings
from tests.integration.streams import budget, fast_settings, publish, stream_of
from tests.payments.conftest import TEST_SECRET_KEY, LocalStripe, running_localstripe
from tests.payments.shop import (
    count_payments,
    pay,
    payment_of,
    place_order,
    set_order_status,
    stripe_client,
)

pytestmark = pytest.mark.usefixtures("no_orders")

GROUP = "payments"


class CountingGateway:
    """A gateway that notes each call it passes on to the real one."""

    def __init__(self, inner: PaymentGateway) -> None:
        self.inner = inner
        self.calls: list[str] = []

    async def create_intent(self, order_id: UUID | str, amount: Decimal, currency: str) -> Intent:
        self.calls.append("create")
        return await self.inner.create_intent(order_id, amount, currency)

    async def retrieve_intent(self, intent_id: str) -> Intent:
        self.calls.append("retrieve")
        return await self.inner.retrieve_intent(intent_id)

    async def cancel_intent(self, intent_id: str) -> Intent:
        self.calls.append("cancel")
        return await self.inner.cancel_intent(intent_id)

    async def refund(self, intent_id: str) -> Refund:
        self.calls.append("refund")
        return await self.inner.refund(intent_id)

    def made(self, count: int, call: str) -> Callable[[], bool]:
        return lambda: self.calls.count(call) >= count


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return fast_settings(settings)


@pytest.fixture
def gateway(localstripe: LocalStripe) -> CountingGateway:
    # Built as the deployment builds it: from settings.
    settings = Settings(stripe_secret_key=TEST_SECRET_KEY, stripe_api_base=localstripe.url)
    return CountingGateway(StripeGateway.from_settings(settings))


def registry_of(resources: Resources, gateway: PaymentGateway) -> HandlerRegistry:
    return payment_handlers(lambda: resources, lambda settings: gateway).for_group(GROUP)


async def work(
    resources: Resources,
    settings: Settings,
    gateway: PaymentGateway,
    done: Callable[[], bool] = lambda: False,
    seconds: float = 10,
) -> ConsumerStats:
    """One worker invocation, until ``done()`` or ``seconds`` have passed."""
    return await run_consumer(
        registry_of(resources, gateway),
        resources.engine,
        resources.redis,
        settings,
        budget(seconds, done),
    )


async def handle_directly(
    resources: Resources, settings: Settings, gateway: PaymentGateway, event: Event
) -> None:
    """Run the event's handler in a transaction of its own, committed."""
    registry = registry_of(resources, gateway)
    found = registry.lookup(event)
    assert found is not None
    payload_type, handler = found
    async with UnitOfWork(resources.engine) as run:
        await handler(
            payload_type.model_validate(event.payload), event, registry.unit_of_work(run, settings)
        )
        await run.commit()


def event_of(payload: Payload, order_id: UUID) -> Event:
    return Event.of(payload, order_id)


async def test_an_order_awaiting_payment_gets_its_intent_recorded(
    resources: Resources, fast: Settings, gateway: CountingGateway, localstripe: LocalStripe
) -> None:
    order = await place_order(resources.engine, Decimal("19.99"), "EUR")
    await publish(resources.redis, fast, event_of(order, order.order_id))

    stats = await work(resources, fast, gateway, gateway.made(1, "create"))

    assert stats.handled == 1
    record = await payment_of(resources.engine, order.order_id)
    assert record is not None
    assert (record.amount, record.currency, record.status) == (
        1999,
        "EUR",
        "requires_payment_method",
    )
    assert record.client_secret.startswith(f"{record.intent_id}_secret_")
    stored = await stripe_client(localstripe).v1.payment_intents.retrieve_async(record.intent_id)
    assert (stored.amount, stored.currency) == (1999, "eur")
    assert stored.metadata["order_id"] == str(order.order_id)


async def test_an_event_redelivered_after_its_commit_makes_no_second_intent(
    resources: Resources, fast: Settings, gateway: CountingGateway
) -> None:
    order = await place_order(resources.engine)
    await publish(resources.redis, fast, event_of(order, order.order_id))
    await work(resources, fast, gateway, gateway.made(1, "create"))
    # Redis forgets the group's progress (a failover to a lagging replica).
    await resources.redis.xgroup_setid(stream_of(fast, str(order.order_id)), GROUP, "0")

    stats = await work(resources, fast, gateway, seconds=1)

    assert (stats.handled, stats.duplicates) == (0, 1)
    assert gateway.calls == ["create"]
    assert await count_payments(resources.engine) == 1


async def test_the_handler_run_twice_asks_the_provider_once(
    resources: Resources, settings: Settings, gateway: CountingGateway
) -> None:
    order = await place_order(resources.engine)
    event = event_of(order, order.order_id)

    await handle_directly(resources, settings, gateway, event)
    first = await payment_of(resources.engine, order.order_id)
    await handle_directly(resources, settings, gateway, event)

    assert gateway.calls == ["create"]
    assert await payment_of(resources.engine, order.order_id) == first
    assert await count_payments(resources.engine) == 1


async def test_an_order_that_expired_before_the_worker_came_gets_no_intent(
    resources: Resources, fast: Settings, gateway: CountingGateway
) -> None:
    order = await place_order(resources.engine)
    await set_order_status(resources.engine, order.order_id, OrderStatus.EXPIRED)
    await publish(resources.redis, fast, event_of(order, order.order_id))
    await publish(
        resources.redis, fast, event_of(OrderExpired(order_id=order.order_id), order.order_id)
    )

    stats = await work(resources, fast, gateway, lambda: False, seconds=1)

    assert stats.handled == 2
    assert gateway.calls == []
    assert await payment_of(resources.engine, order.order_id) is None


async def test_an_expired_order_has_its_intent_cancelled(
    resources: Resources, fast: Settings, gateway: CountingGateway, localstripe: LocalStripe
) -> None:
    order = await place_order(resources.engine)
    await publish(resources.redis, fast, event_of(order, order.order_id))
    await work(resources, fast, gateway, gateway.made(1, "create"))
    await set_order_status(resources.engine, order.order_id, OrderStatus.EXPIRED)
    await publish(
        resources.redis, fast, event_of(OrderExpired(order_id=order.order_id), order.order_id)
    )

    await work(resources, fast, gateway, gateway.made(1, "cancel"))

    record = await payment_of(resources.engine, order.order_id)
    assert record is not None
    assert (record.status, record.refund_id) == ("canceled", None)
    stored = await stripe_client(localstripe).v1.payment_intents.retrieve_async(record.intent_id)
    assert stored.status == "canceled"


async def test_a_failed_payment_cancels_the_intent_once_however_often_delivered(
    resources: Resources, settings: Settings, gateway: CountingGateway
) -> None:
    order = await place_order(resources.engine)
    await handle_directly(resources, settings, gateway, event_of(order, order.order_id))
    await set_order_status(resources.engine, order.order_id, OrderStatus.PAYMENT_FAILED)
    failed = event_of(
        OrderPaymentFailed(order_id=order.order_id, reason="card_declined"), order.order_id
    )

    await handle_directly(resources, settings, gateway, failed)
    await handle_directly(resources, settings, gateway, failed)

    assert gateway.calls == ["create", "cancel"]
    record = await payment_of(resources.engine, order.order_id)
    assert record is not None
    assert record.status == "canceled"


async def test_a_paid_order_cancelled_later_is_refunded(
    resources: Resources, settings: Settings, gateway: CountingGateway, localstripe: LocalStripe
) -> None:
    order = await place_order(resources.engine, Decimal("19.99"))
    await handle_directly(resources, settings, gateway, event_of(order, order.order_id))
    record = await payment_of(resources.engine, order.order_id)
    assert record is not None
    await pay(localstripe, record.intent_id)
    # The order was confirmed, then cancelled; the webhook that would have
    # told us of the payment has not come (our record still says unpaid).
    await set_order_status(resources.engine, order.order_id, OrderStatus.CANCELLED)
    cancelled = OrderCancelled(order_id=order.order_id, previous_status="CONFIRMED")

    await handle_directly(resources, settings, gateway, event_of(cancelled, order.order_id))
    await handle_directly(resources, settings, gateway, event_of(cancelled, order.order_id))

    # Cancelling answered that the intent had succeeded; it was refunded, once.
    assert gateway.calls == ["create", "cancel", "refund"]
    refunded = await payment_of(resources.engine, order.order_id)
    assert refunded is not None
    assert refunded.refund_id is not None
    assert refunded.status == "succeeded"
    stored = await stripe_client(localstripe).v1.refunds.retrieve_async(refunded.refund_id)
    assert (stored.amount, stored.payment_intent, stored.status) == (
        1999,
        record.intent_id,
        "succeeded",
    )


async def test_a_payment_captured_after_the_order_expired_is_refunded(
    resources: Resources, settings: Settings, gateway: CountingGateway, localstripe: LocalStripe
) -> None:
    order = await place_order(resources.engine)
    await handle_directly(resources, settings, gateway, event_of(order, order.order_id))
    record = await payment_of(resources.engine, order.order_id)
    assert record is not None
    await pay(localstripe, record.intent_id)
    await set_order_status(resources.engine, order.order_id, OrderStatus.EXPIRED)
    succeeded = PaymentSucceeded(order_id=order.order_id, intent_id=record.intent_id)

    await handle_directly(resources, settings, gateway, event_of(succeeded, order.order_id))
    # The order's OrderExpired comes after: already refunded, nothing more.
    expired = OrderExpired(order_id=order.order_id)
    await handle_directly(resources, settings, gateway, event_of(expired, order.order_id))

    assert gateway.calls == ["create", "refund"]
    refunded = await payment_of(resources.engine, order.order_id)
    assert refunded is not None
    assert refunded.refund_id is not None


async def test_a_payment_of_an_order_awaiting_it_is_kept(
    resources: Resources, settings: Settings, gateway: CountingGateway, localstripe: LocalStripe
) -> None:
    order = await place_order(resources.engine)
    await handle_directly(resources, settings, gateway, event_of(order, order.order_id))
    record = await payment_of(resources.engine, order.order_id)
    assert record is not None
    await pay(localstripe, record.intent_id)
    succeeded = PaymentSucceeded(order_id=order.order_id, intent_id=record.intent_id)

    # The orders worker confirms it on the same event.
    await handle_directly(resources, settings, gateway, event_of(succeeded, order.order_id))

    assert gateway.calls == ["create"]
    kept = await payment_of(resources.engine, order.order_id)
    assert kept is not None
    assert kept.refund_id is None


async def test_an_order_without_an_intent_has_nothing_to_cancel(
    resources: Resources, settings: Settings, gateway: CountingGateway
) -> None:
    order = await place_order(resources.engine, status=OrderStatus.CANCELLED)
    cancelled = OrderCancelled(order_id=order.order_id, previous_status="AWAITING_PAYMENT")

    await handle_directly(resources, settings, gateway, event_of(cancelled, order.order_id))

    assert gateway.calls == []


@pytest.fixture
def own_localstripe() -> Iterator[LocalStripe]:
    # Its own server: this test stops it, which the others must not see.
    with running_localstripe() as server:
        yield server


async def test_while_the_provider_is_down_nothing_is_dead_lettered_and_the_intent_comes_later(
    resources: Resources, fast: Settings, own_localstripe: LocalStripe
) -> None:
    clock = Clock()
    breaker = CircuitBreaker(cooldown_seconds=30, clock=clock)
    gateway = CountingGateway(StripeGateway(stripe_client(own_localstripe), breaker))
    order = await place_order(resources.engine)
    await publish(resources.redis, fast, event_of(order, order.order_id))
    own_localstripe.stop()

    # More invocations than an event's deliveries: each meets the outage.
    for _ in range(fast.worker_max_deliveries + 2):
        with pytest.raises(PaymentProviderUnavailable):
            await work(resources, fast, gateway)
        assert breaker.is_open

    assert await list_dead_letters(resources.engine) == []
    (waiting,) = await resources.redis.xpending_range(
        stream_of(fast, str(order.order_id)), GROUP, "-", "+", 10
    )
    assert waiting["times_delivered"] == 0  # no delivery was charged
    # The first attempt reached for the provider; the others failed at once.
    assert gateway.calls == ["create"] * (fast.worker_max_deliveries + 2)

    own_localstripe.start()
    clock.now += 31  # the cooldown ends: the next event tries the provider again
    stats = await work(
        resources, fast, gateway, gateway.made(fast.worker_max_deliveries + 3, "create")
    )

    assert stats.handled == 1
    record = await payment_of(resources.engine, order.order_id)
    assert record is not None
    assert record.status == "requires_payment_method"
    assert await list_dead_letters(resources.engine) == []
    assert await count_payments(resources.engine) == 1
