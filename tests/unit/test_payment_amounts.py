from decimal import Decimal

import pytest

from storefront.payments import minor_units


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("12.50", "EUR", 1250),
        ("0.29", "eur", 29),  # 0.29 as a float times 100 is 28.999...
        ("19.99", "USD", 1999),
        ("9999999999.99", "EUR", 999_999_999_999),
        ("500", "JPY", 500),
        ("500.00", "JPY", 500),
        ("1500", "KRW", 1500),
        ("1.25", "KWD", 1250),
    ],
)
def test_minor_units(amount: str, currency: str, expected: int) -> None:
    assert minor_units(Decimal(amount), currency) == expected


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("12.505", "EUR"),  # no half cents
        ("500.5", "JPY"),  # yen have no decimals
        ("1.255", "KWD"),  # Stripe takes three-decimal currencies to two
        ("0", "EUR"),
        ("-1", "EUR"),
        ("NaN", "EUR"),
        ("Infinity", "EUR"),
    ],
)
def test_what_a_currency_cannot_express_is_refused(amount: str, currency: str) -> None:
    with pytest.raises(ValueError, match=r"amount|decimals"):
        minor_units(Decimal(amount), currency)
