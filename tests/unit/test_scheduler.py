"""The local scheduler: expressions, events, and ticks that never pile up.

Expressions are checked by the fire times of the triggers they become, from a
fixed instant. The scheduler itself runs for real (APScheduler, threads) on
sub-second intervals, with fleets whose invocations block until the test lets
them go: every wait is bounded, and the assertions are about counts and order,
never about how fast anything ran.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]

from storefront_dev.lambda_process import Invocation
from storefront_dev.scheduler import (
    LocalScheduler,
    Runs,
    ScheduleError,
    describe,
    parse_expression,
    scheduled_event,
)
from storefront_dev.templates import Schedule, TemplateError, load_template

WALL_START = datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)  # a Sunday
RELAY = Schedule("OutboxRelayFunction", "rate(1 minute)", "OutboxRelayFunctionEveryMinute")
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
WAIT = 30.0  # the bound on any wait for the scheduler's threads


def fire_times(expression: str, after: datetime, count: int = 4) -> list[str]:
    trigger = parse_expression(expression)
    times: list[str] = []
    previous, now = None, after
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        times.append(f"{fire.astimezone(UTC):%a %Y-%m-%d %H:%M}")
        previous = now = fire
    return times


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
        ("rate(7 days)", 7 * 86400),
        ("  rate( 10 minutes )  ", 600),
    ],
)
def test_rate_expressions_become_intervals(expression: str, seconds: int) -> None:
    trigger = parse_expression(expression)
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.interval == timedelta(seconds=seconds)
    first = trigger.get_next_fire_time(None, WALL_START)
    assert trigger.get_next_fire_time(first, first) - first == timedelta(seconds=seconds)


def test_the_templates_own_schedules_fire_on_their_rates() -> None:
    schedules = load_template(TEMPLATE).schedules
    expressions = {schedule.expression for schedule in schedules}
    assert {"rate(1 minute)", "rate(1 hour)"} <= expressions
    for expression in expressions:
        trigger = parse_expression(expression)  # each one runs locally
        first = trigger.get_next_fire_time(None, WALL_START)
        second = trigger.get_next_fire_time(first, first)
        if expression == "rate(1 minute)":
            assert second - first == timedelta(minutes=1)
        elif expression == "rate(1 hour)":
            assert second - first == timedelta(hours=1)


@pytest.mark.parametrize(
    ("expression", "fires"),
    [
        # Every night at 03:00 UTC: once a day, never every minute.
        (
            "cron(0 3 * * ? *)",
            ["Mon 2026-11-23 03:00", "Tue 2026-11-24 03:00", "Wed 2026-11-25 03:00"],
        ),
        (
            "cron(0/15 * * * ? *)",
            ["Sun 2026-11-22 03:15", "Sun 2026-11-22 03:30", "Sun 2026-11-22 03:45"],
        ),
        (
            "cron(0 9 ? * MON-FRI *)",
            ["Mon 2026-11-23 09:00", "Tue 2026-11-24 09:00", "Wed 2026-11-25 09:00"],
        ),
        # EventBridge's numbers: 1 is Sunday, so 2-6 is MON-FRI ...
        (
            "cron(0 9 ? * 2-6 *)",
            ["Mon 2026-11-23 09:00", "Tue 2026-11-24 09:00", "Wed 2026-11-25 09:00"],
        ),
        # ... 1 Sunday (APScheduler's 1 would be Tuesday) and 7 Saturday.
        (
            "cron(0 8 ? * 1 *)",
            ["Sun 2026-11-22 08:00", "Sun 2026-11-29 08:00", "Sun 2026-12-06 08:00"],
        ),
        (
            "cron(30 0 ? * 7 *)",
            ["Sat 2026-11-28 00:30", "Sat 2026-12-05 00:30", "Sat 2026-12-12 00:30"],
        ),
        # A range across the week's end wraps.
        (
            "cron(0 6 ? * FRI-MON *)",
            ["Sun 2026-11-22 06:00", "Mon 2026-11-23 06:00", "Fri 2026-11-27 06:00"],
        ),
        # The last Friday of the month, the first Monday, the last day.
        (
            "cron(0 18 ? * 6L *)",
            ["Fri 2026-11-27 18:00", "Fri 2026-12-25 18:00", "Fri 2027-01-29 18:00"],
        ),
        (
            "cron(0 10 ? * 2#1 *)",
            ["Mon 2026-12-07 10:00", "Mon 2027-01-04 10:00", "Mon 2027-02-01 10:00"],
        ),
        (
            "cron(0 0 L * ? *)",
            ["Mon 2026-11-30 00:00", "Thu 2026-12-31 00:00", "Sun 2027-01-31 00:00"],
        ),
        (
            "cron(0 0 1 JAN,JUL ? 2027-2028)",
            ["Fri 2027-01-01 00:00", "Thu 2027-07-01 00:00", "Sat 2028-01-01 00:00"],
        ),
    ],
)
def test_cron_expressions_fire_as_eventbridge_would(expression: str, fires: list[str]) -> None:
    assert fire_times(expression, WALL_START + timedelta(seconds=30), len(fires)) == fires


def test_a_cron_schedule_does_not_fire_every_minute() -> None:
    times = fire_times("cron(0 3 * * ? *)", WALL_START + timedelta(seconds=1), count=10)
    assert len(set(times)) == 10
    assert all(time.endswith("03:00") for time in times)
    assert fire_times("cron(0 3 * * ? *)", WALL_START - timedelta(minutes=1), 1) == [
        "Sun 2026-11-22 03:00"
    ]


@pytest.mark.parametrize(
    "expression",
    [
        "rate(0 minutes)",
        "rate(-1 minute)",
        "rate(1.5 hours)",
        "rate(1 second)",
        "rate(2 weeks)",
        "rate(5)",
        "rate(minutes)",
        "every 5 minutes",
        "cron(0 3 * * ?)",  # AWS cron has six fields
        "cron(0 3 * * ? * *)",
        "cron(0 3 1 * MON *)",  # one of the day fields must be ?
        "cron(0 3 * * * *)",
        "cron(0 3 ? * ? *)",
        "cron(61 3 * * ? *)",
        "cron(0 3 ? * 8 *)",  # days of the week are 1-7
        "cron(0 3 ? * MON#6 *)",
        "cron(0 3 ? * MON,6L *)",
        "cron(0 3 15W * ? *)",  # the nearest weekday: not evaluated locally
        "at(2026-12-01T10:00:00)",
        "",
    ],
)
def test_what_the_scheduler_cannot_run_is_a_template_error(expression: str) -> None:
    with pytest.raises(ScheduleError, match=r"rate|cron") as raised:
        parse_expression(expression)
    assert isinstance(raised.value, TemplateError)  # the stack reports it and does not start


def test_describe_names_how_a_schedule_runs_locally() -> None:
    assert describe(RELAY) == "rate(1 minute)"
    nightly = Schedule("F", "cron(0 3 * * ? *)", "FNightly")
    assert describe(nightly) == "cron(0 3 * * ? *) (UTC)"
    off = Schedule("F", "rate(1 hour)", "FHourly", enabled=False)
    assert describe(off) == "rate(1 hour) (disabled in the template)"


def test_the_event_is_eventbridge_schedulers_default_payload() -> None:
    event = scheduled_event(RELAY, WALL_START + timedelta(seconds=60.4))
    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert event["version"] == "0"
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.scheduler"
    assert event["account"] == "123456789012"
    assert event["time"] == "2026-11-22T03:01:00Z"
    assert event["resources"] == [
        f"arn:aws:scheduler:{event['region']}:123456789012"
        ":schedule/default/OutboxRelayFunctionEveryMinute"
    ]
    assert event["detail"] == "{}"
    assert event["id"] != scheduled_event(RELAY, WALL_START)["id"]  # one id per invocation


def test_a_schedule_rule_sends_an_eventbridge_rule_event() -> None:
    rule = Schedule("F", "rate(1 hour)", "Hourly", event_type="Schedule")
    event = scheduled_event(rule, WALL_START)
    assert event["source"] == "aws.events"
    assert event["resources"] == [f"arn:aws:events:{event['region']}:123456789012:rule/Hourly"]
    assert event["detail"] == {}


def test_a_literal_input_is_the_event() -> None:
    schedule = Schedule("F", "rate(1 hour)", "Hourly", input='{"mode": "single-shot"}')
    assert scheduled_event(schedule, WALL_START) == {"mode": "single-shot"}


def test_ticks_that_find_an_invocation_running_wait_as_one_the_latest() -> None:
    runs = Runs()
    ticks = [WALL_START + timedelta(minutes=minute) for minute in range(5)]
    assert runs.begin(ticks[0])
    assert not runs.begin(ticks[1])  # skipped: the first still runs
    assert not runs.begin(ticks[2])
    assert runs.end() == ticks[2]  # one more, for the latest, at once
    assert runs.running
    assert runs.end() is None  # none skipped meanwhile: idle
    assert not runs.running
    assert runs.begin(ticks[3])
    assert not runs.begin(ticks[4])
    assert runs.end(stopping=True) is None  # stopping drops what waits
    assert not runs.running


def test_disabled_schedules_do_not_run_and_bad_expressions_fail_up_front() -> None:
    off = Schedule("F", "rate(1 hour)", "FHourly", enabled=False)
    assert LocalScheduler(GatedFleet(), [RELAY, off]).schedules == [RELAY]
    with pytest.raises(ScheduleError, match="every minute"):
        LocalScheduler(GatedFleet(), [Schedule("F", "every minute", "F")])


class GatedFleet:
    """Invocations block until the test opens their gate; it records what ran when.

    ``gates[n]`` holds the (n+1)th invocation; invocations past the gates' end
    return at once, after ``sleep`` seconds.
    """

    def __init__(self, gates: int = 0, sleep: float = 0.0, error: Exception | None = None):
        self.gates = [threading.Event() for _ in range(gates)]
        self.sleep = sleep
        self.error = error
        self.calls: list[tuple[str, Mapping[str, Any]]] = []
        self.story: list[str] = []  # "start" and "end" of each invocation, in order
        self.running = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def invoke(self, function_id: str, event: Mapping[str, Any]) -> Invocation:
        with self._lock:
            number = len(self.calls)
            self.calls.append((function_id, event))
            self.story.append("start")
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            if number < len(self.gates):
                assert self.gates[number].wait(WAIT), "the test never opened the gate"
            time.sleep(self.sleep)
            if self.error is not None:
                raise self.error
        finally:
            with self._lock:
                self.running -= 1
                self.story.append("end")
        return Invocation("request-id", result={})


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.01)


def every(seconds: float) -> Callable[[str], Any]:
    """A trigger for any expression: ticks ``seconds`` apart, to test on a short interval."""
    return lambda expression: IntervalTrigger(seconds=seconds, timezone=UTC)


@pytest.fixture
def running() -> Iterator[list[LocalScheduler]]:
    """Schedulers a test starts; stopped and joined however the test ends."""
    started: list[LocalScheduler] = []
    yield started
    for scheduler in started:
        scheduler.stop()
        scheduler.join()


def test_a_slow_invocation_does_not_pile_up_ticks(running: list[LocalScheduler]) -> None:
    fleet = GatedFleet(gates=2)
    lines: list[str] = []
    scheduler = LocalScheduler(fleet, [RELAY], log=lines.append, trigger_for=every(0.05))
    running.append(scheduler)
    scheduler.start()
    # The start-up invocation holds on while ticks pass: each is skipped.
    wait_for(lambda: sum("skipped" in line for line in lines) >= 3, "three skipped ticks")
    assert len(fleet.calls) == 1
    fleet.gates[0].set()
    # Once it ends, one more invocation (not one per skipped tick) starts at once.
    wait_for(lambda: len(fleet.calls) == 2, "the invocation for the skipped ticks")
    second = next(n for n, line in enumerate(lines) if "late" in line)
    wait_for(lambda: any("skipped" in line for line in lines[second:]), "a skip after it")
    assert len(fleet.calls) == 2  # the second holds on: skipped ticks only wait
    scheduler.stop()
    fleet.gates[1].set()
    scheduler.join()
    assert not scheduler.running
    assert len(fleet.calls) == 2  # what waited when it stopped never ran
    assert fleet.most_at_once == 1
    invocations = [line for line in lines if "skipped" not in line]
    assert ["late" in line for line in invocations] == [False, True]
    first_skip = next(n for n, line in enumerate(lines) if "skipped" in line)
    assert lines.index(invocations[1]) > first_skip
    assert lines[0].startswith(
        "SCHEDULE OutboxRelayFunction rate(1 minute) (OutboxRelayFunctionEveryMinute) tick "
    )
    assert "skipped: the previous invocation still runs" in lines[first_skip]


def test_a_function_slower_than_its_rate_runs_back_to_back(
    running: list[LocalScheduler],
) -> None:
    fleet = GatedFleet(sleep=0.2)
    lines: list[str] = []
    scheduler = LocalScheduler(fleet, [RELAY], log=lines.append, trigger_for=every(0.05))
    running.append(scheduler)
    scheduler.start()
    wait_for(lambda: len(fleet.calls) >= 4, "four invocations")
    scheduler.stop()
    scheduler.join()
    assert not scheduler.running
    # One at a time, whatever the ticks did meanwhile.
    assert fleet.most_at_once == 1
    assert fleet.story == ["start", "end"] * len(fleet.calls)
    assert any("skipped" in line for line in lines)
    # Each event names the tick it stands for: never an earlier one than the last.
    times = [event["time"] for _, event in fleet.calls]
    assert times == sorted(times)


def test_a_cron_schedule_runs_at_start_up_then_waits_for_its_time(
    running: list[LocalScheduler],
) -> None:
    nightly = Schedule("OutboxCleanupFunction", "cron(0 3 * * ? *)", "Nightly")
    fleet = GatedFleet()
    before = datetime.now(UTC).replace(microsecond=0)
    scheduler = LocalScheduler(fleet, [nightly], log=lambda line: None)
    running.append(scheduler)
    scheduler.start()
    wait_for(lambda: len(fleet.calls) == 1, "the start-up invocation")

    def at_three(tick: datetime | None) -> bool:
        return tick is not None and f"{tick:%H:%M:%S.%f}" == "03:00:00.000000"

    # Once the start-up tick is done, the next is the next 03:00 UTC.
    wait_for(lambda: at_three(scheduler.next_tick(nightly)), "the next tick")
    next_tick = scheduler.next_tick(nightly)
    assert next_tick is not None
    assert before < next_tick <= datetime.now(UTC) + timedelta(days=1)
    assert len(fleet.calls) == 1
    assert fleet.calls[0][1]["time"] >= f"{before:%Y-%m-%dT%H:%M:%SZ}"


def test_a_failing_invoke_does_not_end_the_schedule(running: list[LocalScheduler]) -> None:
    fleet = GatedFleet(error=RuntimeError("pipe broke"))
    lines: list[str] = []
    scheduler = LocalScheduler(fleet, [RELAY], log=lines.append, trigger_for=every(0.05))
    running.append(scheduler)
    scheduler.start()
    wait_for(lambda: len(fleet.calls) >= 3, "three invocations")
    scheduler.stop()
    scheduler.join()
    failures = sum("invocation failed: RuntimeError('pipe broke')" in line for line in lines)
    assert failures == len(fleet.calls)


class RecordingFleet:
    """A fleet whose invocations return at once; it says when each function has run."""

    def __init__(self, expected: set[str]) -> None:
        self.invoked: list[str] = []
        self.all_invoked = threading.Event()
        self._expected = expected
        self._lock = threading.Lock()

    def invoke(self, function_id: str, event: Mapping[str, Any]) -> Invocation:
        with self._lock:
            self.invoked.append(function_id)
            if self._expected <= set(self.invoked):
                self.all_invoked.set()
        return Invocation("request-id", result={})


def test_each_schedule_is_invoked_at_start_up_and_stops_cleanly() -> None:
    schedules = [
        RELAY,
        Schedule("OrderWorkerFunction", "rate(1 minute)", "OrderWorkerFunctionEveryMinute"),
        Schedule("OutboxCleanupFunction", "rate(1 hour)", "OutboxCleanupFunctionHourly"),
    ]
    fleet = RecordingFleet({schedule.function_id for schedule in schedules})
    scheduler = LocalScheduler(fleet, schedules, log=lambda line: None)
    scheduler.start()
    try:
        assert fleet.all_invoked.wait(timeout=WAIT), fleet.invoked
    finally:
        scheduler.stop()
        scheduler.join()
    # Every schedule was waiting for its next tick (a minute away); stop ended them.
    assert sorted(fleet.invoked) == sorted(schedule.function_id for schedule in schedules)
    assert not scheduler.running
    scheduler.stop()  # idempotent
    scheduler.join()
    assert len(fleet.invoked) == len(schedules)
