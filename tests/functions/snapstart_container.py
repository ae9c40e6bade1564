"""A SnapStart container simulated with ``fork``: init, snapshot, restored copies.

Run as ``python -m tests.functions.snapstart_container SCENARIO RESULT.json``
by test_snapstart.py, with the function's environment set (DATABASE_URL,
REDIS_URL, ...), in a process of its own: a fork copies the whole memory of
the process, as a snapshot copies the microVM's, and pytest's own threads and
connections must not be copied with it.

The parent is the container Lambda initializes when a version is published:
it imports ``functions/catalog_api/app.py`` as the runtime does (which
registers the hooks with ``snapshot_restore_py``), then serves as if init had
used PostgreSQL and Redis. Each child is a container restored from the
snapshot: it may run the after-restore hooks, invokes the handler, asks which
PostgreSQL backend and Redis client serve it and draws random values and ids.
Hooks run from ``snapshot_restore_py``'s registry in the runtime's order:
before-snapshot hooks last registered first, after-restore hooks in order.
Where fork and a snapshot differ, the child undoes the difference: CPython
reseeds ``random`` in a forked child, a restore does not.

Scenarios:

- ``restore``: the before-snapshot hooks run, then two restored containers
  run the after-restore hooks, alive at the same time;
- ``restore_without_hook``: the same, but the restored containers skip the
  after-restore hooks;
- ``snapshot_holding_connections``: the before-snapshot hooks do not run, so
  the snapshot holds the parent's connections; one container restored
  without the after-restore hooks, then one with them. One after the other:
  the first uses the parent's connection, and a fork shares its socket.

Linux only: open sockets are counted in /proc/self/fd.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import snapshot_restore_py
from sqlalchemy import text

from storefront import runtime
from storefront.events.envelope import Event
from storefront.ids import new_id
from storefront.web import documentation
from storefront_dev.in_process import load_function

ROOT = Path(__file__).resolve().parents[2]
DRAWS = 16
# A restored container that has not answered by then is stuck (a hang guard,
# not a timing assertion: the answer normally comes in well under a second).
CHILD_DEADLINE_SECONDS = 60


class LambdaContext:
    """The attributes Powertools reads from Lambda's context."""

    function_name = "storefront-snapstart"
    function_version = "1"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:storefront:live"
    log_group_name = "/aws/lambda/storefront-snapstart"
    log_stream_name = "snapstart"
    aws_request_id = "snapstart-restore"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def run_before_snapshot_hooks() -> None:
    for hook, args, kwargs in reversed(snapshot_restore_py.get_before_snapshot()):
        hook(*args, **kwargs)


def run_after_restore_hooks() -> None:
    for hook, args, kwargs in snapshot_restore_py.get_after_restore():
        hook(*args, **kwargs)


def open_sockets() -> int:
    count = 0
    for descriptor in os.listdir("/proc/self/fd"):
        # OSError: the listing's own descriptor, closed by now.
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{descriptor}").startswith("socket:")
    return count


async def served_by() -> dict[str, int]:
    """The PostgreSQL backend and the Redis client this container's connections are."""
    resources = runtime.container_resources()
    async with resources.engine.connect() as connection:
        backend_pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    client_id = await resources.redis.client_id()
    return {"backend_pid": int(backend_pid), "client_id": int(client_id)}


def draws() -> dict[str, list[Any]]:
    probe = {"event_type": "SnapStartProbe", "version": 1, "aggregate_type": "probe"}
    return {
        # The cache's TTL jitter and redis-py's retry backoff draw from here.
        "random": [random.random() for _ in range(DRAWS)],
        "ids": [str(new_id()) for _ in range(DRAWS)],
        "event_ids": [
            str(Event(**probe, aggregate_id=str(n), payload={}).event_id) for n in range(DRAWS)
        ],
    }


def restored_container(function: Any, *, after_restore: bool) -> dict[str, Any]:
    if after_restore:
        run_after_restore_hooks()
    event = json.loads((ROOT / "events" / "catalog_api" / "get_products.json").read_text())
    response = function.handler(event, LambdaContext())
    return {
        "after_restore": after_restore,
        "status": response["statusCode"],
        **runtime.run(served_by()),
        **draws(),
    }


class Restored:
    """A forked child: reports one JSON line, then holds its connections until released."""

    def __init__(self, work: Callable[[], dict[str, Any]]) -> None:
        report_read, report_write = os.pipe()
        release_read, release_write = os.pipe()
        random_state = random.getstate()
        self.pid = os.fork()
        if self.pid == 0:
            # CPython reseeds ``random`` in a forked child (an at-fork hook);
            # a snapshot restore runs no such hook, so the child takes back
            # the state the parent had, as a restored microVM has it.
            random.setstate(random_state)
            os.close(report_read)
            os.close(release_write)
            signal.alarm(CHILD_DEADLINE_SECONDS)
            status = 0
            try:
                answer = work()
            except BaseException:
                answer, status = {"error": traceback.format_exc()}, 1
            os.write(report_write, (json.dumps(answer) + "\n").encode())
            os.read(release_read, 1)
            # No interpreter exit: it would run finalizers and atexit hooks
            # on state the parent shares, as pytest's would.
            os._exit(status)
        os.close(report_write)
        os.close(release_read)
        self._report = os.fdopen(report_read)
        self._release = release_write

    def report(self) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(self._report.readline())
        return answer

    def release(self) -> int:
        os.write(self._release, b"x")
        os.close(self._release)
        self._report.close()
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status)


def restore_two(function: Any, *, after_restore: bool) -> list[dict[str, Any]]:
    """Two restored containers, the first still holding its connections while the second runs."""
    work = partial(restored_container, function, after_restore=after_restore)
    first = Restored(work)
    reports = [first.report()]
    second = Restored(work)
    reports.append(second.report())
    for child, report in zip((first, second), reports, strict=True):
        report["exit_code"] = child.release()
    return reports


def restore_one_by_one(function: Any) -> list[dict[str, Any]]:
    reports = []
    for after_restore in (False, True):
        child = Restored(partial(restored_container, function, after_restore=after_restore))
        report = child.report()
        report["exit_code"] = child.release()
        reports.append(report)
    return reports


def main() -> None:
    scenario, result = sys.argv[1], Path(sys.argv[2])
    function = load_function(ROOT, "catalog_api")
    # Init made the container's event loop (its self-pipe is a socket pair).
    sockets = {"after_init": open_sockets()}
    # Init that used the servers: its connections are pooled and open.
    parent: dict[str, Any] = runtime.run(served_by())
    sockets["with_connections"] = open_sockets()
    parent["document_loaded_before_snapshot_hooks"] = documentation._document.cache_info().currsize
    parent["boto3_before_snapshot_hooks"] = "boto3" in sys.modules
    if scenario != "snapshot_holding_connections":
        run_before_snapshot_hooks()
    sockets["at_snapshot"] = open_sockets()
    parent["document_loaded_at_snapshot"] = documentation._document.cache_info().currsize
    parent["boto3_at_snapshot"] = "boto3" in sys.modules
    parent["sockets"] = sockets
    if scenario == "snapshot_holding_connections":
        children = restore_one_by_one(function)
    else:
        children = restore_two(function, after_restore=scenario == "restore")
    result.write_text(json.dumps({"parent": parent, "children": children}))


if __name__ == "__main__":
    main()
