"""The local scheduler: expressions, events, and ticks that never pile up.

The tick logic runs on a fake clock and a fake fleet whose invocations "take"
as long as the test says, so an hour of schedule runs in microseconds.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storefront_dev.lambda_process import Invocation
from storefront_dev.scheduler import (
    Cadence,
    LocalScheduler,
    ScheduleError,
    Ticks,
    describe,
    parse_expression,
    scheduled_event,
)
from storefront_dev.templates import Schedule, TemplateError

WALL_START = datetime(2026, 11, 22, 3, 0, 0, tzinfo=UTC)
RELAY = Schedule("OutboxRelayFunction", "rate(1 minute)", "OutboxRelayFunctionEveryMinute")


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
    assert parse_expression(expression) == Cadence(float(seconds))


def test_a_cron_expression_runs_every_minute_and_says_so() -> None:
    cadence = parse_expression("cron(0 3 * * ? *)")
    assert cadence.interval_seconds == 60
    assert "every minute" in cadence.note


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
    assert describe(nightly) == "cron(0 3 * * ? *) (cron is not evaluated locally: every minute)"
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


def test_ticks_coalesce_the_ones_that_passed() -> None:
    ticks = Ticks(interval=60, due=0)
    assert ticks.take(0) == 0
    assert ticks.take(59.9) is None
    assert ticks.seconds_until_due(59.5) == pytest.approx(0.5)
    assert ticks.take(200) == 180  # 60, 120 and 180 passed: one tick, the latest
    assert ticks.seconds_until_due(200) == pytest.approx(40)
    assert ticks.take(240) == 240


@dataclass
class FakeClock:
    now: float = 1000.0

    def wall(self) -> datetime:
        return WALL_START + timedelta(seconds=self.now - 1000.0)


@dataclass
class FakeFleet:
    """Invocations take the given durations on the fake clock; then the test is over."""

    clock: FakeClock
    durations: Sequence[float]
    calls: list[tuple[float, str, Mapping[str, Any]]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return len(self.calls) >= len(self.durations)

    def invoke(self, function_id: str, event: Mapping[str, Any]) -> Invocation:
        self.calls.append((self.clock.now - 1000.0, function_id, event))
        self.clock.now += self.durations[len(self.calls) - 1]
        return Invocation("request-id", result={})

    def wait(self, seconds: float) -> bool:
        self.clock.now += seconds
        return self.done


def run_schedule(
    durations: Sequence[float], schedule: Schedule = RELAY
) -> tuple[FakeFleet, list[str]]:
    clock = FakeClock()
    fleet = FakeFleet(clock, durations)
    lines: list[str] = []
    scheduler = LocalScheduler(
        fleet,
        [schedule],
        clock=lambda: clock.now,
        wall_clock=clock.wall,
        wait=fleet.wait,
        log=lines.append,
    )
    ((schedule, cadence),) = scheduler.schedules
    scheduler.run_schedule(schedule, cadence)
    return fleet, lines


def test_a_short_invocation_runs_once_per_tick_from_start_up() -> None:
    fleet, lines = run_schedule([5, 5, 5, 5])
    assert [start for start, _, _ in fleet.calls] == [0, 60, 120, 180]
    assert [event["time"][11:] for _, _, event in fleet.calls] == [
        "03:00:00Z",
        "03:01:00Z",
        "03:02:00Z",
        "03:03:00Z",
    ]
    assert len(lines) == 4
    assert lines[0] == (
        "SCHEDULE OutboxRelayFunction rate(1 minute) (OutboxRelayFunctionEveryMinute)"
        " tick 03:00:00Z"
    )
    assert not any("late" in line for line in lines)


def test_a_function_looping_past_its_rate_runs_back_to_back() -> None:
    # Timeout 70 s on a one-minute rate: each tick passes while the previous
    # invocation runs, so the next one starts the moment it ends.
    fleet, lines = run_schedule([70, 70, 70, 70])
    assert [start for start, _, _ in fleet.calls] == [0, 70, 140, 210]
    # Each event still names the tick it stands for.
    assert [event["time"][11:] for _, _, event in fleet.calls] == [
        "03:00:00Z",
        "03:01:00Z",
        "03:02:00Z",
        "03:03:00Z",
    ]
    assert ["late" in line for line in lines] == [False, True, True, True]


def test_ticks_that_pass_during_one_invocation_start_only_one_more() -> None:
    # Ticks at 60 and 120 pass during a 130 s invocation: one invocation at
    # 130 (for the 120 tick), not two, and then the schedule is back on its grid.
    fleet, lines = run_schedule([130, 5, 5, 5])
    assert [start for start, _, _ in fleet.calls] == [0, 130, 180, 240]
    assert fleet.calls[1][2]["time"].endswith("03:02:00Z")
    assert ["late" in line for line in lines] == [False, True, False, False]


def test_every_invocation_is_the_scheduled_function_with_a_fresh_event() -> None:
    fleet, _ = run_schedule([1, 1, 1])
    assert {function_id for _, function_id, _ in fleet.calls} == {"OutboxRelayFunction"}
    assert len({event["id"] for _, _, event in fleet.calls}) == 3


def test_a_failing_invoke_does_not_end_the_schedule() -> None:
    clock = FakeClock()
    lines: list[str] = []

    class BrokenFleet(FakeFleet):
        def invoke(self, function_id: str, event: Mapping[str, Any]) -> Invocation:
            super().invoke(function_id, event)
            raise RuntimeError("pipe broke")

    fleet = BrokenFleet(clock, [1, 1])
    scheduler = LocalScheduler(
        fleet, [RELAY], clock=lambda: clock.now, wait=fleet.wait, log=lines.append
    )
    scheduler.run_schedule(*scheduler.schedules[0])
    assert len(fleet.calls) == 2
    assert sum("invocation failed: RuntimeError('pipe broke')" in line for line in lines) == 2


def test_disabled_schedules_do_not_run_and_bad_expressions_fail_up_front() -> None:
    off = Schedule("F", "rate(1 hour)", "FHourly", enabled=False)
    assert LocalScheduler(FakeFleet(FakeClock(), []), [RELAY, off]).schedules == [
        (RELAY, Cadence(60.0))
    ]
    with pytest.raises(ScheduleError, match="every minute"):
        LocalScheduler(FakeFleet(FakeClock(), []), [Schedule("F", "every minute", "F")])


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


def test_threads_invoke_each_schedule_at_start_up_and_stop_cleanly() -> None:
    schedules = [
        RELAY,
        Schedule("OrderWorkerFunction", "rate(1 minute)", "OrderWorkerFunctionEveryMinute"),
        Schedule("OutboxCleanupFunction", "rate(1 hour)", "OutboxCleanupFunctionHourly"),
    ]
    fleet = RecordingFleet({schedule.function_id for schedule in schedules})
    scheduler = LocalScheduler(fleet, schedules, log=lambda line: None)
    scheduler.start()
    try:
        assert fleet.all_invoked.wait(timeout=30), fleet.invoked
    finally:
        scheduler.stop()
        scheduler.join()
    # Every thread was waiting for its next tick; the stop woke and ended them.
    assert not scheduler.running
    invoked = len(fleet.invoked)
    scheduler.stop()  # idempotent
    assert len(fleet.invoked) == invoked
