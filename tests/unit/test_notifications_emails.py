"""What order emails say: the templates, filled in (storefront.notifications.emails)."""

from __future__ import annotations

from decimal import Decimal
from importlib import resources

import pytest

from storefront.ids import new_id
from storefront.notifications import emails
from storefront.notifications.emails import EmailKind
from storefront.orders import OrderLineSummary, OrderStatus, OrderSummary

MUG, TEA = new_id(), new_id()


def order(email: str | None = "ada@customer.example", **changes: object) -> OrderSummary:
    fields: dict[str, object] = {
        "order_id": new_id(),
        "customer_id": "ada",
        "email": email,
        "status": OrderStatus.CONFIRMED,
        "reason": None,
        "total": Decimal("31.00"),
        "currency": "EUR",
        "lines": (
            OrderLineSummary(MUG, 2, Decimal("12.50")),
            OrderLineSummary(TEA, 1, Decimal("6.00")),
        ),
    }
    return OrderSummary(**(fields | changes))  # type: ignore[arg-type]


NAMES = {MUG: "Mug", TEA: "Green tea"}


def test_a_confirmation_names_the_order_its_lines_and_total() -> None:
    placed = order()
    email = emails.compose(emails.confirmed(), placed, NAMES)

    reference = placed.order_id.hex[-8:].upper()
    assert (email.to, email.kind) == ("ada@customer.example", EmailKind.CONFIRMATION)
    assert email.subject == f"Order {reference} is confirmed"
    for body in (email.text, email.html):
        assert str(placed.order_id) in body
        assert "Mug" in body
        assert "Green tea" in body
        assert "12.50 EUR" in body
        assert "25.00 EUR" in body  # 2 x 12.50
        assert "31.00 EUR" in body
        assert "$" not in body  # every placeholder filled in
    assert "2 x Mug  at 12.50 EUR  = 25.00 EUR" in email.text
    assert email.html.startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("notice", "why", "refund"),
    [
        (
            emails.cancelled("CONFIRMED"),
            "at your request or by our staff",
            "Your payment will be refunded in full.",
        ),
        (
            emails.cancelled("AWAITING_PAYMENT"),
            "at your request or by our staff",
            "If any payment was taken for it, it will be refunded in full.",
        ),
        (
            emails.expired(),
            "We did not receive its payment in time",
            "If any payment was taken for it, it will be refunded in full.",
        ),
        (
            emails.payment_failed("card_declined: Your card was declined."),
            "The payment provider said: card_declined: Your card was declined.",
            "If any payment was taken for it, it will be refunded in full.",
        ),
    ],
)
def test_a_cancellation_says_why_and_what_becomes_of_the_money(
    notice: emails.Notice, why: str, refund: str
) -> None:
    placed = order()
    email = emails.compose(notice, placed, NAMES)

    assert email.kind is EmailKind.CANCELLATION
    assert email.subject == f"Order {emails.reference(placed.order_id)} has been cancelled"
    for body in (email.text, email.html):
        assert why in body
        assert refund in body
        assert "31.00 EUR" in body
        assert "$" not in body


def test_a_payment_failure_without_a_reason_still_reads_well() -> None:
    email = emails.compose(emails.payment_failed("  "), order(), NAMES)
    assert "Its payment did not go through, so the items held for it have been released." in (
        email.text
    )
    assert "provider said" not in email.text


def test_html_escapes_what_it_did_not_write_and_text_keeps_it() -> None:
    hostile = "<script>alert(1)</script> & Co"
    email = emails.compose(
        emails.payment_failed('<img src=x onerror="steal()">'), order(), {MUG: hostile}
    )

    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in email.html
    assert "<img" not in email.html
    assert hostile in email.text


def test_a_product_without_a_name_is_shown_by_its_id() -> None:
    email = emails.compose(emails.confirmed(), order(), {TEA: "Green tea"})
    assert f"product {MUG}" in email.text


def test_an_amount_keeps_its_cents() -> None:
    placed = order(
        total=Decimal("0.30"), lines=(OrderLineSummary(MUG, 3, Decimal("0.10")),), currency="USD"
    )
    email = emails.compose(emails.confirmed(), placed, NAMES)
    assert "3 x Mug  at 0.10 USD  = 0.30 USD" in email.text
    assert "Total: 0.30 USD" in email.text


def test_an_order_without_an_address_has_no_email() -> None:
    with pytest.raises(ValueError, match="no email address"):
        emails.compose(emails.confirmed(), order(email=None), NAMES)


def test_the_reference_is_the_random_end_of_the_id_not_its_time() -> None:
    # Two ids made in the same millisecond share their start (UUIDv7: time first).
    first, second = new_id(), new_id()
    assert emails.reference(first) != emails.reference(second)
    assert len(emails.reference(first)) == 8


def test_every_template_is_package_data_beside_the_code() -> None:
    """The layer ships the package folder as it is (layers/storefront/Makefile),
    so the templates travel with the modules that read them."""
    folder = resources.files("storefront.notifications") / "templates"
    names = sorted(item.name for item in folder.iterdir())
    assert names == [
        "cancellation.html",
        "cancellation.txt",
        "confirmation.html",
        "confirmation.txt",
        "line.html",
        "line.txt",
    ]
