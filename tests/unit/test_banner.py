"""What ``storefront run`` prints: schedules in the summaries and the banner."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from storefront_dev.banner import banner, functions_summary, schedules_summary
from storefront_dev.templates import StackTemplate, load_template

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class View:
    template: StackTemplate
    schedules_on: bool
    url: str = "http://127.0.0.1:3000"
    sample_product_id: str | None = "0190c5d2-0000-7000-8000-000000000001"


@pytest.fixture(scope="module")
def template() -> StackTemplate:
    return load_template(ROOT / "template.yaml")


def test_the_banner_lists_every_schedule(template: StackTemplate) -> None:
    text = banner(View(template, schedules_on=True))
    assert "Schedules (LOCAL_SCHEDULES=off disables them):" in text
    for schedule in template.schedules:
        line = next(line for line in text.splitlines() if line.endswith(schedule.function_id))
        assert schedule.expression in line
    assert f"{View.url}/orders" in text  # the saga to try


def test_the_banner_mints_tokens_for_its_curl_examples(template: StackTemplate) -> None:
    text = banner(View(template, schedules_on=True))
    assert "TOKEN=$(.venv/bin/storefront token --sub alice)" in text
    assert "ADMIN=$(.venv/bin/storefront token --sub admin --admin)" in text
    writes = [line for line in text.splitlines() if "-X POST" in line or "-X PUT" in line]
    following = text.splitlines()
    for line in writes:
        # Each write's next line carries its token.
        assert "Authorization: Bearer $" in following[following.index(line) + 1]


def test_the_banner_says_when_schedules_are_off(template: StackTemplate) -> None:
    text = banner(View(template, schedules_on=False))
    assert "Schedules: off (LOCAL_SCHEDULES=off); these functions do not run:" in text
    assert "OutboxRelayFunction" in text
    assert f"{View.url}/orders" not in text


def test_the_summaries_count_schedules(template: StackTemplate) -> None:
    # Only the deploy-time migrations function has no route or schedule;
    # make run applies migrations itself.
    assert "; 1 without HTTP routes or schedules" in functions_summary(template)
    count = len(template.schedules)
    assert schedules_summary(template, True).startswith(f"schedules: {count} of {count} running")
    assert schedules_summary(template, False).startswith("schedules: off (LOCAL_SCHEDULES=off)")
