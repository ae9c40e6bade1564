"""The composition root: what each function serves or runs, and with what.

Every ``functions/<name>/app.py`` is one line over this module. It is the one
place that decides which routers an API function serves, which handlers a
worker runs under which consumer group, and which adapters they get (the
object store for reports). The deployment's consumer groups are the keys of
:data:`WORKERS`: the relay republishes for them, cleanup waits for them, the
admin status reports them.

A function imports what it serves when it asks for it, not before: import
time is cold-start time, and the catalog function has no use for the reports
worker's code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from storefront import snapstart
from storefront.runtime import container_resources
from storefront.web.app import ResourcesProvider, create_api
from storefront.web.contract import merge

if TYPE_CHECKING:
    from fastapi import FastAPI

    from storefront.events.handlers import HandlerRegistry
    from storefront.scheduled_handler import ScheduledJob

__all__ = [
    "CONSUMER_GROUPS",
    "WORKERS",
    "api_document",
    "catalog_app",
    "checkout_sweep",
    "cleanup",
    "orders_app",
    "relay",
    "reports_app",
    "views_flush",
    "worker",
]


def _inventory_handlers() -> HandlerRegistry:
    from storefront.inventory.handlers import inventory_handlers

    return inventory_handlers


def _order_handlers() -> HandlerRegistry:
    from storefront.orders.handlers import order_handlers

    return order_handlers


def _payment_handlers() -> HandlerRegistry:
    from storefront.payments import StripeGateway
    from storefront.payments.handlers import payment_handlers

    # One gateway per container, made on the first event that needs it.
    return payment_handlers(container_resources, StripeGateway.from_settings)


def _report_handlers() -> HandlerRegistry:
    from storefront.adapters.object_store import S3ObjectStore
    from storefront.reports.handlers import report_handlers

    return report_handlers(container_resources, S3ObjectStore.from_settings)


def _notification_handlers() -> HandlerRegistry:
    from storefront.notifications.handlers import notification_handlers
    from storefront.notifications.mailer import SesMailer

    return notification_handlers(container_resources, SesMailer.from_settings)


# Every function but migrate imports this module at init: with SnapStart on,
# Lambda's runtime runs these hooks around the snapshot (storefront.snapstart).
snapstart.register_runtime_hooks()

# Consumer group -> the handlers its worker function runs.
WORKERS: dict[str, Callable[[], HandlerRegistry]] = {
    "inventory": _inventory_handlers,
    "orders": _order_handlers,
    "payments": _payment_handlers,
    "reports": _report_handlers,
    "notifications": _notification_handlers,
}
CONSUMER_GROUPS: tuple[str, ...] = tuple(WORKERS)


def catalog_app(resources: ResourcesProvider = container_resources) -> FastAPI:
    """Products, categories, product views (they live under /products), health,
    and the API's one OpenAPI document with its page."""
    from storefront.analytics.api import router as views
    from storefront.catalog.api import router as catalog
    from storefront.web.documentation import router as documentation

    # Views first: /products/popular must win over /products/{product_id}.
    app = create_api("Storefront catalog", [views, catalog], resources, with_health=True)
    app.include_router(documentation)
    return app


def orders_app(resources: ResourcesProvider = container_resources) -> FastAPI:
    """Orders, carts, stock (under /products/{id}/stock), the event pipeline's
    admin routes, token revocation (logout, and an admin's for a customer),
    and Stripe's webhook (signed by Stripe: not rate limited)."""
    from storefront.carts.api import router as carts
    from storefront.events.api import router as events_admin
    from storefront.inventory.api import router as stock
    from storefront.orders.api import router as orders
    from storefront.payments.api import router as payments
    from storefront.web.token_revocation import router as token_revocation

    app = create_api(
        "Storefront orders",
        [orders, carts, stock, events_admin, token_revocation],
        resources,
        unmetered=[payments],
    )
    app.state.consumer_groups = CONSUMER_GROUPS
    return app


def reports_app(resources: ResourcesProvider = container_resources) -> FastAPI:
    """Reports, built into S3 and downloaded through presigned URLs."""
    from storefront.adapters.object_store import S3ObjectStore
    from storefront.reports.api import router as reports

    app = create_api("Storefront reports", [reports], resources)
    app.state.object_store_for = S3ObjectStore.from_settings
    return app


def api_document() -> dict[str, Any]:
    """The whole HTTP API's OpenAPI document, from every API function's app
    (``make openapi`` writes it into the package; ``/openapi.json`` serves it)."""
    apps = (catalog_app, orders_app, reports_app)
    return merge(app(container_resources).openapi() for app in apps)


def worker(group: str) -> ScheduledJob:
    """The scheduled job of ``group``'s worker function."""
    from storefront.events.worker import worker_job

    return worker_job(WORKERS[group]().for_group(group))


def relay() -> ScheduledJob:
    from storefront.events.relay_loop import relay_job

    return relay_job(CONSUMER_GROUPS)


def cleanup() -> ScheduledJob:
    from storefront.events.cleanup import cleanup_job

    return cleanup_job(CONSUMER_GROUPS)


def views_flush() -> ScheduledJob:
    from storefront.analytics.flush import views_flush_job

    return views_flush_job()


def checkout_sweep() -> ScheduledJob:
    from storefront.orders.checkout import checkout_sweep_job

    return checkout_sweep_job()
