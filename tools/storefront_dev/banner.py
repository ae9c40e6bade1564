"""What ``storefront run`` tells the developer: start-up summaries and the banner."""

from __future__ import annotations

from typing import Protocol

from storefront_dev.scheduler import describe
from storefront_dev.templates import StackTemplate

SCHEDULES_SWITCH = "LOCAL_SCHEDULES=off"
MINT = ".venv/bin/storefront token"


class StackView(Protocol):
    """What the banner shows of the running stack."""

    @property
    def url(self) -> str: ...
    @property
    def template(self) -> StackTemplate: ...
    @property
    def schedules_on(self) -> bool: ...
    @property
    def sample_product_id(self) -> str | None: ...


def functions_summary(template: StackTemplate) -> str:
    summary = f"functions: {len(template.functions)} from template.yaml, a process each"
    invoked = {route.function_id for route in template.routes}
    invoked |= {schedule.function_id for schedule in template.schedules}
    others = [spec for spec in template.functions.values() if spec.logical_id not in invoked]
    if others:
        kinds = "/".join(sorted({kind for spec in others for kind in spec.event_types}))
        summary += (
            f"; {len(others)} without HTTP routes or schedules"
            f" ({kinds or 'no events'}) do not run locally"
        )
    return summary


def schedules_summary(template: StackTemplate, schedules_on: bool) -> str:
    count = len(template.schedules)
    if not schedules_on:
        return (
            f"schedules: off ({SCHEDULES_SWITCH}); {count} scheduled functions do not run,"
            " so events stay in the outbox"
        )
    enabled = sum(schedule.enabled for schedule in template.schedules)
    return (
        f"schedules: {enabled} of {count} running, each function invoked now and then"
        f" on its schedule ({SCHEDULES_SWITCH} disables them)"
    )


def banner(stack: StackView) -> str:
    url = stack.url
    product = stack.sample_product_id or "<product id>"
    lines = ["", f"  Storefront is running on {url}   (Ctrl-C to stop)", "", "  Routes:"]
    width = max((len(route.path) for route in stack.template.routes), default=0)
    for route in stack.template.routes:
        lines.append(f"    {route.method:<7} {route.path:<{width}}  -> {route.function_id}")
    lines += _schedule_lines(stack)
    # Reads are anonymous; writes need a token (catalog and stock: an admin's).
    admin = """      -H "Authorization: Bearer $ADMIN" -H 'content-type: application/json' \\"""
    lines += [
        "",
        "  Try:",
        f"    TOKEN=$({MINT} --sub alice)",
        f"    ADMIN=$({MINT} --sub admin --admin)",
        f"    curl -i {url}/health",
        f"    curl '{url}/products?limit=3'",
        f"    curl -i {url}/products/{product}",
        f"    curl -i -X POST {url}/products \\",
        admin,
        """      -d '{"sku": "ACC-MUG-TRAVEL", "name": "Travel Mug", "price": "19.90"}'""",
    ]
    if stack.schedules_on and stack.template.schedules:
        # The saga end to end: stock, an order, and the workers confirming it.
        customer = '-H "Authorization: Bearer $TOKEN"'
        lines += [
            f"    curl -X PUT {url}/products/{product}/stock \\",
            admin,
            """      -d '{"on_hand": 5}'""",
            f"    curl -i -X POST {url}/orders \\",
            f"      {customer} -H 'content-type: application/json' \\",
            f"""      -d '{{"items": [{{"product_id": "{product}", "quantity": 2}}]}}'""",
            f"    curl {url}/orders/<order id> {customer}   # PENDING, then CONFIRMED",
            "",
            "  Checkout (cart -> order awaiting payment -> pay -> CONFIRMED -> email):",
            f"    curl -X PUT {url}/cart/items/{product} \\",
            f"      {customer} -H 'content-type: application/json' -d '{{\"quantity\": 1}}'",
            f"    curl -i -X POST {url}/checkout \\",
            f"      {customer} -H 'content-type: application/json' \\",
            """      -H "Idempotency-Key: $(date +%s%N)" -d '{"email": "alice@example.com"}'""",
            f"    curl {url}/orders/<order id> {customer}   # payment.client_secret appears",
            "    .venv/bin/storefront pay <order id>        # card 4242... on localstripe",
            f"    curl {url}/orders/<order id> {customer}   # CONFIRMED",
            "    .venv/bin/storefront emails                # the confirmation email",
        ]
    lines.append("")
    return "\n".join(lines)


def _schedule_lines(stack: StackView) -> list[str]:
    schedules = stack.template.schedules
    if not schedules:
        return []
    if stack.schedules_on:
        heading = f"  Schedules ({SCHEDULES_SWITCH} disables them):"
    else:
        heading = f"  Schedules: off ({SCHEDULES_SWITCH}); these functions do not run:"
    described = [describe(schedule) for schedule in schedules]
    width = max(len(text) for text in described)
    lines = ["", heading]
    for schedule, text in zip(schedules, described, strict=True):
        lines.append(f"    {text:<{width}}  -> {schedule.function_id}")
    return lines


__all__ = ["StackView", "banner", "functions_summary", "schedules_summary"]
