"""The outbox relay (tests/integration/test_relay.py) on Redis Cluster."""

from __future__ import annotations

import pytest

from tests.cluster.suites import reuse

pytestmark = pytest.mark.cluster

globals().update(
    reuse(
        "tests.integration.test_relay",
        leave_out={
            "test_loop_mode_wakes_on_notify_and_returns_when_the_budget_ends": (
                "waits out a 3 s budget for PostgreSQL's NOTIFY; its Redis calls are the "
                "other tests' own"
            ),
        },
    )
)
