"""Every event payload type the deployment knows, registered by importing its module.

Every worker reads every partition stream, so it sees the other groups'
events too, and dead-letters one whose type and version it does not know
(:mod:`storefront.events.delivery`). Each worker imports this module
(:mod:`storefront.events.worker`), so "unknown" means that no module declares
it -- not that this worker happens not to import the module that does.
A context's new ``events`` module is added here.
"""

import storefront.inventory.events
import storefront.orders.events
import storefront.reports.events  # noqa: F401
