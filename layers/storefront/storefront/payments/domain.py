"""An order's payment as the payments context keeps it, and the rules on its status."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

__all__ = ["SETTLED", "PaymentRecord"]

# A PaymentIntent's statuses that never change again: a late or reordered
# webhook finds them and changes nothing (payment_intent.payment_failed
# after payment_intent.succeeded, for one).
SETTLED = frozenset({"succeeded", "canceled"})


@dataclass(frozen=True)
class PaymentRecord:
    """One order's PaymentIntent: a row of ``payment_intents``."""

    order_id: UUID
    intent_id: str
    client_secret: str
    # The intent's status as last heard from the provider (its answers, its webhooks).
    status: str
    # In the currency's minor units, as the provider counts.
    amount: int
    currency: str
    refund_id: str | None = None

    @property
    def settled(self) -> bool:
        return self.status in SETTLED
