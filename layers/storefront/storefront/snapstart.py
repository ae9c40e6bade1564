"""Lambda SnapStart: what a function does before its snapshot and after each restore.

With SnapStart on (the template's ``SnapStart`` parameter), Lambda runs a
function's init once, when a version is published, snapshots the microVM's
memory and disk, and starts every new execution environment of that version
from a copy of the snapshot. Whatever init leaves in memory is in all of
them at once. So:

- **before the snapshot**, everything that holds no connection is loaded
  and warmed: the settings, the modules the first request would import, and
  what each API function answers without I/O (registered by
  :func:`warm_before_snapshot`). Then every PostgreSQL and Redis connection
  is closed and secrets are forgotten: a socket in the snapshot would be
  shared by every restored container, and a cached password would outlive
  its rotation in all of them;
- **after each restore**, connections the snapshot may still hold are
  dropped without touching them (new ones open on first use), and Python's
  ``random`` is reseeded: its state is part of the snapshot, so every
  restored container would draw the same numbers (the cache's TTL jitter,
  redis-py's retry backoff).

What needs no hook: ids. ``storefront.ids`` (uuid7 with 76 bits from
``secrets``), event ids, request ids and asyncpg's statement names (uuid4)
read the kernel's random source on every call, which Firecracker keeps fresh
in a restored clone: what goes stale is a generator kept in userspace, such
as ``random``'s. uuid7's last-timestamp guard, if init made an id at all,
holds a time before the restore, so it never holds new ids back. The JWKS
key set is fetched on the first authenticated request, after the restore,
and the settings come from the version's environment, the same in every
container.

Lambda's Python runtime ships ``snapshot_restore_py`` and runs the hooks it
registers; elsewhere (tests, ``make run``) the module may be missing, and
then nothing registers: this package never depends on it.
"""

from __future__ import annotations

import contextlib
import importlib
import random
from collections.abc import Callable

from storefront.adapters.endpoints import read_secret
from storefront.observability import logger
from storefront.runtime import abandon_container_resources, close_container_resources
from storefront.settings import Settings, get_settings

__all__ = ["after_restore", "before_snapshot", "register_runtime_hooks", "warm_before_snapshot"]

Warmer = Callable[[], object]

_warmers: list[Warmer] = []
_registered = False


def warm_before_snapshot(warmer: Warmer) -> None:
    """Run ``warmer`` in the before-snapshot hook, before connections are closed.

    A warmer does the work a container would otherwise do on its first
    request (an API function answers requests that need no connection). A
    warmer that fails costs a colder snapshot, not a failed publish.
    """
    _warmers.append(warmer)


def before_snapshot() -> None:
    settings = get_settings()
    for warmer in _warmers:
        try:
            warmer()
        except Exception:
            logger.exception("snapstart warm-up failed; the snapshot is taken without it")
    _import_lazy_modules(settings)
    close_container_resources()
    read_secret.cache_clear()


def after_restore() -> None:
    # No argument: seeded from os.urandom, which differs in every restore.
    random.seed()
    abandon_container_resources()


def register_runtime_hooks() -> bool:
    """Register the hooks with Lambda's runtime, once; False where it is absent."""
    global _registered
    if _registered:
        return True
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
    _registered = True
    return True


def _import_lazy_modules(settings: Settings) -> None:
    """Import now what the first request would: an import in the snapshot is free
    on every restore. boto3 (about 100 ms) reads the secrets, on the first
    connection; the Lambda runtime ships it, so it may be missing elsewhere."""
    if settings.database_secret_arn or settings.auth_secret_arn:
        with contextlib.suppress(ImportError):
            importlib.import_module("boto3")
