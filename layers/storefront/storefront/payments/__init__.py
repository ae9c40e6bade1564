"""Payments: the payment provider (Stripe) behind :class:`PaymentGateway`.

The facade. Only the adapter exists so far; the payments worker and the
webhook route that will use it are not built yet (docs/architecture.md).
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

__all__ = [
    "Intent",
    "PaymentConfigurationError",
    "PaymentGateway",
    "PaymentProviderUnavailable",
    "PaymentRefused",
    "Refund",
    "StripeGateway",
    "minor_units",
]
