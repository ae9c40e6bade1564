"""What one Lambda container keeps between invocations.

A Lambda container serves one invocation at a time and is frozen between
them. Pooled asyncpg and redis connections belong to the event loop that opened
them, so the container keeps ONE loop for its whole life: Mangum picks it up
through ``asyncio.get_event_loop()`` and scheduled handlers run their coroutines
on it with :func:`run`. ``asyncio.run()`` per invocation would close the loop
and strand every pooled connection ("attached to a different loop").
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from storefront.resources import Resources
from storefront.settings import get_settings

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_resources: Resources | None = None


def container_loop() -> asyncio.AbstractEventLoop:
    """The container's event loop, created on first use and set as current."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    # Set it every time: code that ran asyncio.run() in this thread (Alembic's
    # environment does) leaves no current loop behind, and Mangum asks for one.
    asyncio.set_event_loop(_loop)
    return _loop


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on the container's loop (never asyncio.run)."""
    return container_loop().run_until_complete(coroutine)


def container_resources() -> Resources:
    """The container's engine and Redis client, created lazily, once."""
    global _resources
    if _resources is None:
        _resources = Resources.from_settings(get_settings())
    return _resources


def close_container_resources() -> None:
    """Close the container's connections now; the next use opens new ones.

    SnapStart's before-snapshot hook (storefront.snapstart): no socket may be
    in the snapshot that every restored container starts from.
    """
    global _resources
    resources, _resources = _resources, None
    if resources is not None:
        run(resources.close())


def abandon_container_resources() -> None:
    """Forget the container's engines and Redis client without a word to their servers.

    SnapStart's after-restore hook (storefront.snapstart): a connection still
    in the snapshot is a copy of a socket that another container may hold
    too, to a peer that has long forgotten it. Closing it properly would
    write to it (asyncpg's Terminate, a TLS close_notify) and could wait on
    the peer within the restore's time limit; dropped, it is aborted by its
    driver's finalizer, which only releases the file descriptor. The next use
    creates new ones.
    """
    global _resources
    _resources = None
