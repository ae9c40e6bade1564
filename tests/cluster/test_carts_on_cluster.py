"""Carts on Redis Cluster: tests/integration/test_carts_api.py with a cluster
client, the cart's scripts on its slot, and "Redis down" a cluster of the
test's own, stopped or paused mid-test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.servers import LocalCluster, start_cluster
from tests.cluster.suites import reuse

pytestmark = pytest.mark.cluster

globals().update(
    reuse(
        "tests.integration.test_carts_api",
        leave_out={
            "test_while_the_breaker_is_open_carts_answer_503_without_asking_redis": (
                "it counts the standalone client's commands; the breaker skips either client"
                " alike, and the stopped-cluster test covers the errors a cluster client raises"
            ),
        },
    )
)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[LocalCluster]:
    """Replaces the suite's: a cluster of the test's own, stopped mid-test."""
    cluster = start_cluster(tmp_path)
    yield cluster
    cluster.stop()
