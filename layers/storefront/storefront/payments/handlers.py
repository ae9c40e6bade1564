"""What the payments worker does with the order's events: ask the provider for
a PaymentIntent when the order awaits its payment, cancel it (or refund it)
when the order will not be paid for, refund a payment that came too late.

The registry is made by :func:`payment_handlers` with the container's
resources and the gateway the composition root chooses (storefront.wiring);
tests pass their own. The gateway is made once, on the first event that
needs it, on the container's loop (its HTTP client binds to that loop).

A provider that cannot be reached raises PaymentProviderUnavailable, which
the consumer does not charge to the event: the worker stops and the events
wait, in order, until the provider is back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from storefront.events.envelope import Event
from storefront.events.handlers import HandlerRegistry
from storefront.orders.events import (
    OrderAwaitingPayment,
    OrderCancelled,
    OrderExpired,
    OrderPaymentFailed,
)
from storefront.payments import service
from storefront.payments.events import PaymentSucceeded
from storefront.payments.gateway import PaymentGateway
from storefront.payments.unit_of_work import PaymentsUnitOfWork, SqlPaymentsUnitOfWork
from storefront.resources import Resources
from storefront.settings import Settings

__all__ = ["payment_handlers"]


def payment_handlers(
    resources: Callable[[], Resources], gateway_for: Callable[[Settings], PaymentGateway]
) -> HandlerRegistry:
    registry = HandlerRegistry(
        unit_of_work=lambda run, settings: SqlPaymentsUnitOfWork.on(run.connection, settings)
    )
    made: list[PaymentGateway] = []

    def gateway() -> PaymentGateway:
        if not made:
            made.append(gateway_for(resources().settings))
        return made[0]

    @registry.on(OrderAwaitingPayment)
    async def request_payment(
        payload: OrderAwaitingPayment, event: Event, uow: PaymentsUnitOfWork
    ) -> Sequence[Event]:
        await service.request_payment(
            payload.order_id, payload.total, payload.currency, uow, gateway()
        )
        return []

    async def call_off_payment(
        payload: OrderExpired | OrderPaymentFailed | OrderCancelled,
        event: Event,
        uow: PaymentsUnitOfWork,
    ) -> Sequence[Event]:
        await service.call_off_payment(payload.order_id, uow, gateway())
        return []

    registry.on(OrderExpired)(call_off_payment)
    registry.on(OrderPaymentFailed)(call_off_payment)
    registry.on(OrderCancelled)(call_off_payment)

    @registry.on(PaymentSucceeded)
    async def refund_unwanted_payment(
        payload: PaymentSucceeded, event: Event, uow: PaymentsUnitOfWork
    ) -> Sequence[Event]:
        await service.refund_unwanted_payment(payload.order_id, payload.intent_id, uow, gateway())
        return []

    return registry
