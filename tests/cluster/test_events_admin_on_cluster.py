"""Event status and dead-letter routes (tests/integration/test_events_admin.py) on Redis Cluster."""

from __future__ import annotations

import pytest

from tests.cluster.suites import reuse

pytestmark = pytest.mark.cluster

globals().update(
    reuse(
        "tests.integration.test_events_admin",
        leave_out={
            "test_the_cli_lists_replays_and_purges": (
                "the CLI reads its settings from the environment, where no REDIS_CLUSTER is set"
            ),
        },
    )
)
