"""Amounts as the payment provider takes them: integers of the minor unit.

Stripe wants 12.50 EUR as 1250 and 500 JPY as 500: the exponent depends on
the currency. Pure Decimal arithmetic (a float would turn 0.29 into 28 cents),
and an amount the currency cannot express is refused, never rounded: a
rounded charge is a wrong charge.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["minor_units"]

# Stripe's zero-decimal currencies (stripe.com/docs/currencies#zero-decimal).
ZERO_DECIMAL = frozenset(
    {
        "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA",
        "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
    }
)  # fmt: skip
# Three-decimal currencies: Stripe takes thousandths but only multiples of
# ten (#three-decimal), so at most two decimals reach it.
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def minor_units(amount: Decimal, currency: str) -> int:
    """The amount in the currency's minor unit; ValueError if it has none."""
    code = currency.upper()
    exponent = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"a payment amount must be a positive number, not {amount}")
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {code} has more decimals than {code} takes")
    units = int(scaled)
    if code in THREE_DECIMAL and units % 10:
        raise ValueError(f"{amount} {code}: Stripe takes {code} to two decimals only")
    return units
