"""Payments: the payment provider (Stripe) behind :class:`PaymentGateway`.

The facade: what other contexts may use of payments (their events aside).
"""

from storefront.payments.amounts import minor_units
from storefront.payments.gateway import (
    Intent,
    PaymentConfigurationError,
    PaymentGateway,
    PaymentProviderUnavailable,
    PaymentRefused,
    Refund,
    StripeGateway,
)
from storefront.payments.reads import Payment, payments_of

__all__ = [
    "Intent",
    "Payment",
    "PaymentConfigurationError",
    "PaymentGateway",
    "PaymentProviderUnavailable",
    "PaymentRefused",
    "Refund",
    "StripeGateway",
    "minor_units",
    "payments_of",
]
