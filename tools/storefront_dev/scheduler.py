"""The template's schedules, run locally: EventBridge Scheduler without AWS.

Each scheduled function gets a thread that invokes it through the same
:class:`~storefront_dev.lambda_process.FunctionFleet` the gateway uses, so it
runs in its own warm worker process with a real time budget (its Timeout). It
is invoked once at start-up, so the saga runs as soon as ``make run`` is up, and
then on every tick of its schedule, with the event EventBridge would send.

A worker process serves one invocation at a time, where Lambda would start a
second container for a tick that arrives while the first still runs. So ticks
never pile up: a tick that passes during an invocation starts the next one as
soon as it ends (several passed ticks make one invocation). A looping function
whose Timeout exceeds its rate therefore runs back to back, which keeps events
flowing as Lambda's overlapping invocations do. Failed invocations are not
retried as EventBridge would; the next tick runs anyway.

Expressions: ``rate(N minute|minutes|hour|hours|day|days)``. ``cron(...)`` is
not evaluated locally: such a schedule runs every minute, and the banner says
so. Anything else (``at(...)``) cannot start the stack.
"""

from __future__ import annotations

import json
import math
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from storefront_dev.gateway import Invoker
from storefront_dev.lambda_container import ACCOUNT_ID, region
from storefront_dev.templates import Schedule, TemplateError

_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_CRON = re.compile(r"cron\((.*)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
CRON_LOCAL_INTERVAL_SECONDS = 60.0
# An idle thread wakes at once on stop; one mid-invocation only once the fleet's
# stop has ended that invocation, so joining it waits a little longer.
JOIN_TIMEOUT_SECONDS = 5.0


class ScheduleError(TemplateError):
    """A schedule expression the local scheduler cannot run."""


@dataclass(frozen=True)
class Cadence:
    interval_seconds: float
    note: str = ""  # how running it locally differs from AWS, for the banner


def parse_expression(expression: str) -> Cadence:
    """How often ``expression`` runs locally; :class:`ScheduleError` if it cannot."""
    text = expression.strip()
    rate = _RATE.fullmatch(text)
    if rate:
        value = int(rate.group(1))
        if value < 1:
            raise ScheduleError(f"{expression!r}: a rate must be a positive number")
        return Cadence(float(value * _UNIT_SECONDS[rate.group(2).removesuffix("s")]))
    cron = _CRON.fullmatch(text)
    if cron:
        # AWS cron has six fields: minutes hours day-of-month month day-of-week year.
        if len(cron.group(1).split()) != 6:
            raise ScheduleError(f"{expression!r}: a cron expression has six fields")
        return Cadence(CRON_LOCAL_INTERVAL_SECONDS, "cron is not evaluated locally: every minute")
    raise ScheduleError(
        f"{expression!r}: only rate(N minute|minutes|hour|hours|day|days) and cron(...)"
        " schedules run locally"
    )


def scheduled_event(schedule: Schedule, tick: datetime) -> Any:
    """The event EventBridge sends the function for the tick at ``tick``."""
    if schedule.input is not None:
        return json.loads(schedule.input)
    where = f"{region()}:{ACCOUNT_ID}"
    detail: Any
    if schedule.event_type == "Schedule":  # an EventBridge rule
        source, detail = "aws.events", {}
        resource = f"arn:aws:events:{where}:rule/{schedule.name}"
    else:
        # EventBridge Scheduler's default payload carries its detail as a JSON
        # string, where a rule's carries an object: handlers must not rely on either.
        source, detail = "aws.scheduler", "{}"
        resource = f"arn:aws:scheduler:{where}:schedule/{schedule.group}/{schedule.name}"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": source,
        "account": ACCOUNT_ID,
        "time": tick.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region(),
        "resources": [resource],
        "detail": detail,
    }


@dataclass
class Ticks:
    """A schedule's ticks, ``interval`` apart from the first; passed ones coalesce."""

    interval: float
    due: float  # the next tick, on the clock the caller passes in

    def seconds_until_due(self, now: float) -> float:
        return max(0.0, self.due - now)

    def take(self, now: float) -> float | None:
        """The latest tick at or before ``now`` if one is due, and move past it."""
        if now < self.due:
            return None
        passed = math.floor((now - self.due) / self.interval)
        tick = self.due + passed * self.interval
        self.due = tick + self.interval
        return tick


class LocalScheduler:
    """Invokes each enabled schedule's function at start-up and on each of its ticks."""

    def __init__(
        self,
        fleet: Invoker,
        schedules: Iterable[Schedule],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        wait: Callable[[float], bool] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self._fleet = fleet
        # Parsed here, so an expression the scheduler cannot run stops the stack
        # before anything starts rather than in a thread later.
        self.schedules = [(s, parse_expression(s.expression)) for s in schedules if s.enabled]
        self._clock = clock
        self._wall_clock = wall_clock
        self._stopping = threading.Event()
        self._wait = wait or self._stopping.wait  # True once stopping
        self._log = log or _log
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for schedule, cadence in self.schedules:
            thread = threading.Thread(
                target=self.run_schedule,
                args=(schedule, cadence),
                name=f"schedule:{schedule.name}",
                daemon=True,  # a thread stuck in an invocation never holds up exit
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Issue no more invocations; running ones end when the fleet stops."""
        self._stopping.set()

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def join(self, timeout: float = JOIN_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [thread for thread in self._threads if thread.is_alive()]

    def run_schedule(self, schedule: Schedule, cadence: Cadence) -> None:
        """One schedule's loop, until :meth:`stop`: what each thread runs."""
        started, started_wall = self._clock(), self._wall_clock()
        ticks = Ticks(cadence.interval_seconds, due=started)  # the start-up tick
        ended = started  # when the previous invocation ended
        while not self._wait(ticks.seconds_until_due(self._clock())):
            tick = ticks.take(self._clock())
            if tick is None:
                continue  # woke early; wait for the rest
            tick_time = started_wall + timedelta(seconds=tick - started)
            self._invoke(schedule, tick_time, overlapped=tick < ended)
            ended = self._clock()

    def _invoke(self, schedule: Schedule, tick_time: datetime, *, overlapped: bool) -> None:
        # A tick that passed while the previous invocation ran says so: Lambda
        # would have run it in a second container, overlapping the first.
        late = ", late: the previous invocation ran past it" if overlapped else ""
        self._log(
            f"SCHEDULE {schedule.function_id} {schedule.expression} ({schedule.name})"
            f" tick {tick_time.astimezone(UTC):%H:%M:%SZ}{late}"
        )
        try:
            self._fleet.invoke(schedule.function_id, scheduled_event(schedule, tick_time))
        except Exception as error:  # the schedule must outlive one broken invocation
            self._log(f"SCHEDULE {schedule.function_id}: invocation failed: {error!r}")


def describe(schedule: Schedule) -> str:
    """``rate(1 minute)``, plus how it runs locally when that differs from AWS."""
    if not schedule.enabled:
        return f"{schedule.expression} (disabled in the template)"
    note = parse_expression(schedule.expression).note
    return f"{schedule.expression} ({note})" if note else schedule.expression


def _log(line: str) -> None:
    # One write per line, flushed, as the fleet's START/END/REPORT lines are
    # written to the same stream, so lines never interleave mid-line.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


__all__ = [
    "Cadence",
    "LocalScheduler",
    "ScheduleError",
    "Ticks",
    "describe",
    "parse_expression",
    "scheduled_event",
]
