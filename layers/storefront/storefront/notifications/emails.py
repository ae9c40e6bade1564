"""What an order email says: a subject, plain text and HTML.

The wording lives in ``templates/`` (shipped in the layer with the package),
filled in with the standard library's :class:`string.Template` (``$name``
placeholders; a missing one is an error, never a blank). A template engine
would be a runtime dependency for two emails. Every value that goes into the
HTML is escaped first: product names and a payment provider's decline reason
are not markup.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cache
from importlib import resources
from string import Template
from uuid import UUID

from storefront.orders import OrderLineSummary, OrderSummary

__all__ = [
    "Email",
    "EmailKind",
    "Notice",
    "cancelled",
    "compose",
    "confirmed",
    "expired",
    "payment_failed",
    "reference",
]


class EmailKind(StrEnum):
    CONFIRMATION = "confirmation"
    CANCELLATION = "cancellation"


@dataclass(frozen=True)
class Notice:
    """What an email tells of an order: confirmed; or cancelled, why, and
    what becomes of the money."""

    kind: EmailKind
    why: str = ""
    refund: str = ""


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    html: str
    kind: EmailKind


_PACKAGE = "storefront.notifications"

# The payments worker cancels the order's PaymentIntent, and refunds it if it
# was captured meanwhile (a payment racing the expiry, a cancelled paid order).
_REFUND_IF_CHARGED = "If any payment was taken for it, it will be refunded in full."
_REFUND_PAID = "Your payment will be refunded in full."


def confirmed() -> Notice:
    return Notice(EmailKind.CONFIRMATION)


def cancelled(previous_status: str) -> Notice:
    paid = previous_status == "CONFIRMED"
    return Notice(
        EmailKind.CANCELLATION,
        why="This was done at your request or by our staff.",
        refund=_REFUND_PAID if paid else _REFUND_IF_CHARGED,
    )


def expired() -> Notice:
    return Notice(
        EmailKind.CANCELLATION,
        why="We did not receive its payment in time, so the items held for it have been released.",
        refund=_REFUND_IF_CHARGED,
    )


def payment_failed(reason: str) -> Notice:
    said = reason.strip().rstrip(".")
    return Notice(
        EmailKind.CANCELLATION,
        why="Its payment did not go through, so the items held for it have been released."
        + (f" The payment provider said: {said}." if said else ""),
        refund=_REFUND_IF_CHARGED,
    )


def reference(order_id: UUID) -> str:
    """A short name for an order in a subject line: the end of its id (the
    start of a time-ordered UUID is its creation time, shared by neighbours)."""
    return order_id.hex[-8:].upper()


def compose(notice: Notice, order: OrderSummary, names: Mapping[UUID, str]) -> Email:
    """The email telling ``order``'s customer what ``notice`` says; ``names``
    are the products' names (an unnamed product is shown by its id)."""
    if order.email is None:
        raise ValueError(f"order {order.order_id} has no email address")
    ref = reference(order.order_id)
    subject = (
        f"Order {ref} is confirmed"
        if notice.kind is EmailKind.CONFIRMATION
        else f"Order {ref} has been cancelled"
    )
    values = {
        "subject": subject,
        "reference": ref,
        "order_id": str(order.order_id),
        "total": _money(order.total, order.currency),
        "why": notice.why,
        "refund": notice.refund,
    }

    def render(suffix: str, escape: Callable[[str], str]) -> str:
        lines = "".join(
            _template(f"line.{suffix}").substitute(
                {name: escape(value) for name, value in _line(line, order, names).items()}
            )
            for line in order.lines
        )
        escaped = {name: escape(value) for name, value in values.items()}
        return _template(f"{notice.kind}.{suffix}").substitute(escaped, lines=lines)

    return Email(
        to=order.email,
        subject=subject,
        text=render("txt", _as_is),
        html=render("html", html.escape),
        kind=notice.kind,
    )


def _line(line: OrderLineSummary, order: OrderSummary, names: Mapping[UUID, str]) -> dict[str, str]:
    return {
        "product": names.get(line.product_id) or f"product {line.product_id}",
        "quantity": str(line.quantity),
        "unit_price": _money(line.unit_price, order.currency),
        "amount": _money(line.unit_price * line.quantity, order.currency),
    }


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:.2f} {currency}"


def _as_is(value: str) -> str:
    return value


@cache
def _template(name: str) -> Template:
    text = (resources.files(_PACKAGE) / "templates" / name).read_text(encoding="utf-8")
    return Template(text)
