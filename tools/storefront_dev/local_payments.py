"""``storefront pay`` and ``storefront emails``: the customer's side of a local checkout.

    storefront pay ORDER_ID [--card NUMBER]   pay the order's PaymentIntent on localstripe
    storefront emails                         the order emails moto's SES received

``pay`` does what a front end does with Stripe.js, through the official SDK:
a card PaymentMethod, attached to the order's PaymentIntent, then confirmed.
localstripe then sends the webhook, and the order becomes CONFIRMED. Card
4242 4242 4242 4242 is accepted; 4000 0000 0000 0341 is declined (the order
ends PAYMENT_FAILED). Both read the servers of the running ``make run`` from
``.local/services.json``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_payment_commands", "sent_messages"]

ACCEPTED_CARD = "4242424242424242"


def add_payment_commands(subparsers: Any) -> None:
    pay = subparsers.add_parser("pay", help="pay an order on the local stack's localstripe")
    pay.add_argument("order_id", help="the order's id, as POST /checkout answered it")
    pay.add_argument("--card", default=ACCEPTED_CARD, help="card number (default: 4242...)")
    pay.set_defaults(func=_pay)
    emails = subparsers.add_parser("emails", help="the emails the local stack sent")
    emails.set_defaults(func=_emails)


def _services() -> dict[str, str]:
    from storefront_dev.local_stack import SERVICES_FILE, project_root

    path = project_root() / ".local" / SERVICES_FILE
    if not path.is_file():
        raise SystemExit("no local stack has run here: start it with make run")
    found: dict[str, str] = json.loads(path.read_text())
    return found


def _pay(args: argparse.Namespace) -> int:
    import httpx
    import stripe

    from storefront.settings import Settings
    from storefront_dev.embedded import LOCAL_STRIPE_KEY
    from storefront_dev.local_auth import local_auth, mint_token
    from storefront_dev.local_stack import project_root

    services = _services()
    if "stripe_url" not in services:
        print("storefront pay: this stack uses your Stripe account; pay with Stripe.js")
        return 2
    admin = mint_token(local_auth(Settings(), project_root()), "local-pay", admin=True)
    answer = httpx.get(
        f"{services['stack_url']}/orders/{args.order_id}",
        headers={"Authorization": f"Bearer {admin}"},
        timeout=10,
    )
    if answer.status_code != 200:
        print(f"storefront pay: GET /orders/{args.order_id} answered {answer.status_code}")
        return 1
    payment = answer.json().get("payment")
    if payment is None:
        print("storefront pay: no PaymentIntent yet; the payments worker makes it within seconds")
        return 1
    client = stripe.StripeClient(LOCAL_STRIPE_KEY, base_addresses={"api": services["stripe_url"]})
    method = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": args.card, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    intents = client.v1.payment_intents
    intents.update(payment["intent_id"], params={"payment_method": method.id})
    try:
        paid = intents.confirm(payment["intent_id"])
    except stripe.CardError as declined:
        print(f"{payment['intent_id']}: declined ({declined.user_message}); the webhook follows")
        return 0
    print(f"{paid.id}: {paid.status}; the webhook follows within seconds")
    return 0


def _emails(args: argparse.Namespace) -> int:
    import httpx

    data = httpx.get(f"{_services()['moto_url']}/moto-api/data.json", timeout=10).json()
    messages = sent_messages(data)
    for message in messages:
        to = ", ".join(message["destinations"].get("ToAddresses", []))
        print(f"{message['source']} -> {to}: {message['subject']}")
    print(f"{len(messages)} email(s)")
    return 0


def sent_messages(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The emails in moto's model data (``/moto-api/data.json``): SES v1 and
    v2 sends both land in its ``ses`` backend's ``Message`` list."""
    found: list[dict[str, Any]] = data.get("ses", {}).get("Message", [])
    return found
