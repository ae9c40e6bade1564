"""The template's schedules, run locally: EventBridge Scheduler without AWS.

APScheduler (3.x, a :class:`BackgroundScheduler`: ``make run``'s main thread only
waits for a signal, and invocations block) fires each enabled schedule's ticks:
``rate(N minute|minutes|hour|hours|day|days)`` becomes an interval,
``cron(minutes hours day-of-month month day-of-week year)`` a cron trigger, in
UTC as EventBridge evaluates it. Each tick invokes the function through the same
:class:`~storefront_dev.lambda_process.FunctionFleet` the gateway uses, so it runs
in its own warm worker process with a real time budget (its Timeout), with the
event EventBridge would send. Every schedule is also invoked once at start-up,
so the saga runs as soon as ``make run`` is up.

A worker process serves one invocation at a time, where Lambda would start a
second container for a tick that arrives while the first still runs. So ticks
never pile up (one job instance per schedule, missed ticks coalesced): a tick
that finds the previous invocation still running is skipped, and logged; once
that invocation ends, one more starts at once for the latest skipped tick
(several skipped ticks make one invocation). A looping function whose Timeout
exceeds its rate therefore runs back to back, which keeps events flowing as
Lambda's overlapping invocations do. A tick the scheduler itself could not
serve within :data:`MISFIRE_GRACE_SECONDS` (a suspended laptop) is dropped, and
logged. Failed invocations are not retried as EventBridge would; the next tick
runs anyway.

Cron fields as EventBridge reads them: day-of-week 1-7 is SUN-SAT (or the
names), one of day-of-month and day-of-week is ``?``, ``L`` is the last day of
the month or (``6L``) its last Friday, ``2#1`` its first Monday. ``W`` (nearest
weekday) has no local equivalent, and such a schedule, like ``at(...)`` or a
malformed expression, cannot start the stack.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import (  # type: ignore[import-untyped]
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.base import (  # type: ignore[import-untyped]
    BaseExecutor,
    run_job,
)
from apscheduler.schedulers.background import (  # type: ignore[import-untyped]
    BackgroundScheduler,
)
from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from storefront_dev.gateway import Invoker
from storefront_dev.lambda_container import ACCOUNT_ID, region
from storefront_dev.templates import Schedule, TemplateError

_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_CRON = re.compile(r"cron\((.*)\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
# EventBridge's day-of-week numbers: 1 is Sunday. APScheduler 3.x counts from
# Monday = 0, so numbers are never passed through: every day becomes its name.
_EVENTBRIDGE_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_NTH = ("1st", "2nd", "3rd", "4th", "5th")
# A tick the scheduler thread could not start within this long (the machine
# slept, or stalled) is dropped rather than run late; the next one runs.
MISFIRE_GRACE_SECONDS = 60
# An idle scheduler stops at once; an invocation only once the fleet's stop has
# ended it, so joining waits a little longer.
JOIN_TIMEOUT_SECONDS = 5.0

# APScheduler's own log lines (a skipped or missed tick, as warnings) would
# repeat the SCHEDULE lines below on stderr; only its errors get through.
_APSCHEDULER_LOG = logging.getLogger(f"{__name__}.apscheduler")
_APSCHEDULER_LOG.setLevel(logging.ERROR)


class ScheduleError(TemplateError):
    """A schedule expression the local scheduler cannot run."""


def parse_expression(expression: str) -> BaseTrigger:
    """The APScheduler trigger for ``expression`` (UTC); :class:`ScheduleError` if none."""
    text = expression.strip()
    rate = _RATE.fullmatch(text)
    if rate:
        value = int(rate.group(1))
        if value < 1:
            raise ScheduleError(f"{expression!r}: a rate must be a positive number")
        seconds = value * _UNIT_SECONDS[rate.group(2).removesuffix("s")]
        return IntervalTrigger(seconds=seconds, timezone=UTC)
    cron = _CRON.fullmatch(text)
    if cron:
        return _cron_trigger(expression, cron.group(1).split())
    raise ScheduleError(
        f"{expression!r}: only rate(N minute|minutes|hour|hours|day|days) and cron(...)"
        " schedules run locally"
    )


def _cron_trigger(expression: str, fields: list[str]) -> CronTrigger:
    if len(fields) != 6:
        raise ScheduleError(f"{expression!r}: a cron expression has six fields")
    minute, hour, day_of_month, month, day_of_week, year = (f.lower() for f in fields)
    # EventBridge takes one of the two day fields, and "?" in the other.
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ScheduleError(
            f"{expression!r}: exactly one of day-of-month and day-of-week must be ?"
        )
    try:
        if day_of_week == "?":
            day, weekdays = _day_of_month(day_of_month), "*"
        else:
            day, weekdays = _day_of_week(day_of_week)
        return CronTrigger(
            year=year,
            month=_months(month),
            day=day,
            day_of_week=weekdays,
            hour=hour,
            minute=minute,
            second=0,
            timezone=UTC,
        )
    except ValueError as error:
        raise ScheduleError(
            f"{expression!r}: not a cron expression EventBridge runs: {error}"
        ) from error


def _day_of_month(text: str) -> str:
    if "w" in text:
        raise ValueError("W (the nearest weekday) is not evaluated locally")
    return ",".join("last" if item == "l" else item for item in text.split(","))


def _months(text: str) -> str:
    for number, name in enumerate(_MONTHS, start=1):
        text = re.sub(rf"\b{name}\b", str(number), text)
    return text


def _day_of_week(text: str) -> tuple[str, str]:
    """APScheduler's (day, day_of_week) for an EventBridge day-of-week field.

    ``6L`` and ``2#1`` name a day of the month (the last Friday, the first
    Monday): APScheduler reads those in its ``day`` field.
    """
    if text == "*":
        return "*", "*"
    days: list[str] = []
    positions: list[str] = []
    for item in text.split(","):
        if item == "l":  # as in Quartz: L alone is the last day of the week
            days.append("sat")
        elif item.endswith("l"):
            positions.append(f"last {_weekday(item[:-1])}")
        elif "#" in item:
            weekday, _, nth = item.partition("#")
            if nth not in ("1", "2", "3", "4", "5"):
                raise ValueError(f"{item}: # takes 1 to 5")
            positions.append(f"{_NTH[int(nth) - 1]} {_weekday(weekday)}")
        else:
            days.extend(_weekday_range(item))
    if positions and days:
        raise ValueError("L and # do not mix with plain days of the week")
    if positions:
        return ",".join(positions), "*"
    return "*", ",".join(dict.fromkeys(days))


def _weekday(text: str) -> str:
    if text.isdigit() and 1 <= int(text) <= 7:
        return _EVENTBRIDGE_DAYS[int(text) - 1]
    if text in _EVENTBRIDGE_DAYS:
        return text
    raise ValueError(f"{text!r} is no day of the week (1-7 or SUN-SAT)")


def _weekday_range(text: str) -> list[str]:
    first, dash, last = text.partition("-")
    start = _EVENTBRIDGE_DAYS.index(_weekday(first))
    if not dash:
        return [_EVENTBRIDGE_DAYS[start]]
    end = _EVENTBRIDGE_DAYS.index(_weekday(last))
    # Spelled out, since APScheduler's ranges run Monday to Sunday; FRI-MON wraps.
    return [_EVENTBRIDGE_DAYS[(start + i) % 7] for i in range((end - start) % 7 + 1)]


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
class Runs:
    """One schedule's invocations: one at a time; ticks that find one running
    wait as one, the latest, to run when it ends."""

    running: bool = False
    deferred: datetime | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def begin(self, tick: datetime) -> bool:
        """Whether ``tick`` runs now; if not, it replaces any tick already waiting."""
        with self.lock:
            if self.running:
                self.deferred = tick
                return False
            self.running = True
            return True

    def end(self, *, stopping: bool = False) -> datetime | None:
        """After an invocation: the tick to run next, at once, else None (and idle)."""
        with self.lock:
            tick, self.deferred = self.deferred, None
            if tick is None or stopping:
                self.running = False
                return None
            return tick


_submitted = threading.local()  # the tick the current job thread runs


class _TickExecutor(BaseExecutor):  # type: ignore[misc]
    """Runs each job in a thread of its own, told which tick it stands for.

    The threads are daemons, as a thread stuck in an invocation must never hold
    up exit (a thread pool's are joined when the interpreter exits).
    """

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def run() -> None:
            _submitted.tick = run_times[-1]  # one with coalescing: the latest
            try:
                events = run_job(job, job._jobstore_alias, run_times, _APSCHEDULER_LOG.name)
            except BaseException:
                self._run_job_error(job.id, *sys.exc_info()[1:])
            else:
                self._run_job_success(job.id, events)

        threading.Thread(target=run, name=f"schedule:{job.name}", daemon=True).start()


@dataclass
class _Lane:
    schedule: Schedule
    trigger: BaseTrigger
    runs: Runs = field(default_factory=Runs)


class LocalScheduler:
    """Invokes each enabled schedule's function at start-up and on each of its ticks."""

    def __init__(
        self,
        fleet: Invoker,
        schedules: Iterable[Schedule],
        *,
        log: Callable[[str], None] | None = None,
        trigger_for: Callable[[str], BaseTrigger] = parse_expression,
    ) -> None:
        self._fleet = fleet
        self._log = log or _log
        # Parsed here, so an expression the scheduler cannot run stops the stack
        # before anything starts rather than in a thread later.
        self._lanes = {
            f"{index}:{s.name}": _Lane(s, trigger_for(s.expression))
            for index, s in enumerate(s for s in schedules if s.enabled)
        }
        self._stopping = threading.Event()
        self._idle = threading.Condition()  # notified whenever a lane goes idle
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": _TickExecutor()},
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": MISFIRE_GRACE_SECONDS,
            },
            logger=_APSCHEDULER_LOG,
        )
        self._scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES)
        self._scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)

    @property
    def schedules(self) -> list[Schedule]:
        """The schedules it runs: the enabled ones."""
        return [lane.schedule for lane in self._lanes.values()]

    def start(self) -> None:
        now = datetime.now(UTC)
        for job_id, lane in self._lanes.items():
            self._scheduler.add_job(
                self._on_tick,
                lane.trigger,
                args=(lane,),
                id=job_id,
                name=lane.schedule.name,
                next_run_time=now,  # the start-up tick; then the trigger's
            )
        self._scheduler.start()

    def stop(self) -> None:
        """Issue no more invocations; running ones end when the fleet stops."""
        self._stopping.set()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running) or self._busy()

    def join(self, timeout: float = JOIN_TIMEOUT_SECONDS) -> None:
        """Wait up to ``timeout`` for the running invocations to end."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy() and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)

    def next_tick(self, schedule: Schedule) -> datetime | None:
        """When ``schedule`` fires next, while the scheduler runs."""
        for job_id, lane in self._lanes.items():
            if lane.schedule == schedule:
                job = self._scheduler.get_job(job_id)
                return None if job is None else job.next_run_time
        return None

    def _busy(self) -> bool:
        return any(lane.runs.running for lane in self._lanes.values())

    def _on_tick(self, lane: _Lane) -> None:
        """The APScheduler job: one tick of ``lane``'s schedule."""
        tick: datetime = getattr(_submitted, "tick", None) or datetime.now(UTC)
        if self._stopping.is_set():
            return
        if not lane.runs.begin(tick):
            self._log_skipped(lane.schedule, tick)
            return
        self._run(lane, tick)

    def _run(self, lane: _Lane, tick: datetime) -> None:
        """Invoke for ``tick``, then for each tick skipped meanwhile, until none is."""
        late = False
        next_tick: datetime | None = tick
        try:
            while next_tick is not None:
                self._invoke(lane.schedule, next_tick, late=late)
                late = True
                next_tick = lane.runs.end(stopping=self._stopping.is_set())
        finally:
            if next_tick is not None:  # only on an error past _invoke's own handling
                lane.runs.end(stopping=True)
            with self._idle:
                self._idle.notify_all()

    def _on_skipped(self, event: JobSubmissionEvent) -> None:
        # In the scheduler's thread: APScheduler did not start a tick, as this
        # schedule's job was still running.
        lane = self._lanes.get(event.job_id)
        if lane is None or self._stopping.is_set():
            return
        tick = max(event.scheduled_run_times)
        if lane.runs.begin(tick):
            # The job ended between APScheduler's check and now: nothing will
            # pick this tick up, so it runs now, in a thread of its own.
            threading.Thread(
                target=self._run, args=(lane, tick), name=f"schedule:{event.job_id}", daemon=True
            ).start()
        else:
            self._log_skipped(lane.schedule, tick)

    def _on_missed(self, event: JobExecutionEvent) -> None:
        lane = self._lanes.get(event.job_id)
        if lane is not None:
            self._log(
                f"{_prefix(lane.schedule)} tick {_clock(event.scheduled_run_time)} dropped:"
                f" the scheduler reached it over {MISFIRE_GRACE_SECONDS} s late"
            )

    def _log_skipped(self, schedule: Schedule, tick: datetime) -> None:
        self._log(
            f"{_prefix(schedule)} tick {_clock(tick)} skipped: the previous invocation"
            " still runs (one more starts when it ends)"
        )

    def _invoke(self, schedule: Schedule, tick: datetime, *, late: bool) -> None:
        # A tick that passed while the previous invocation ran says so: Lambda
        # would have run it in a second container, overlapping the first.
        suffix = ", late: the previous invocation ran past it" if late else ""
        self._log(f"{_prefix(schedule)} tick {_clock(tick)}{suffix}")
        try:
            self._fleet.invoke(schedule.function_id, scheduled_event(schedule, tick))
        except Exception as error:  # the schedule must outlive one broken invocation
            self._log(f"SCHEDULE {schedule.function_id}: invocation failed: {error!r}")


def _prefix(schedule: Schedule) -> str:
    return f"SCHEDULE {schedule.function_id} {schedule.expression} ({schedule.name})"


def _clock(tick: datetime) -> str:
    return f"{tick.astimezone(UTC):%H:%M:%SZ}"


def describe(schedule: Schedule) -> str:
    """``rate(1 minute)``; a cron expression says it runs in UTC, as on AWS."""
    if not schedule.enabled:
        return f"{schedule.expression} (disabled in the template)"
    trigger = parse_expression(schedule.expression)
    return (
        f"{schedule.expression} (UTC)" if isinstance(trigger, CronTrigger) else schedule.expression
    )


def _log(line: str) -> None:
    # One write per line, flushed, as the fleet's START/END/REPORT lines are
    # written to the same stream, so lines never interleave mid-line.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


__all__ = [
    "MISFIRE_GRACE_SECONDS",
    "LocalScheduler",
    "Runs",
    "ScheduleError",
    "describe",
    "parse_expression",
    "scheduled_event",
]
