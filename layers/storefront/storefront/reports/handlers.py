"""What the reports worker does with a ReportRequested: build the report.

The registry is made by :func:`report_handlers` with the container's
resources (engines, settings) and the object store the composition root
chooses (storefront.wiring); tests pass their own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from storefront.adapters.database import UnitOfWork
from storefront.adapters.object_store import ObjectStore
from storefront.events.envelope import Event
from storefront.events.handlers import HandlerRegistry
from storefront.reports import service
from storefront.reports.events import ReportRequested
from storefront.resources import Resources
from storefront.settings import Settings

__all__ = ["report_handlers"]


def report_handlers(
    resources: Callable[[], Resources], store_for: Callable[[Settings], ObjectStore]
) -> HandlerRegistry:
    registry = HandlerRegistry()

    @registry.on(ReportRequested)
    async def build_report(
        payload: ReportRequested, event: Event, uow: UnitOfWork
    ) -> Sequence[Event]:
        current = resources()
        store = store_for(current.settings)
        # The aggregate is read from the read endpoint: a report is a
        # snapshot, and one from a replica that lags by moments misses what
        # a build started moments earlier would have missed. The report's own
        # row (locked, then marked READY or FAILED) stays in ``uow``, on the writer.
        await service.build_report(
            payload.report_id, uow, current.read_engine, store, current.settings
        )
        return []

    return registry
