"""Revoked tokens (tests/integration/test_token_revocation.py) on Redis Cluster:
the token's key and its subject's live in different slots, read by one
pipeline without a transaction; "Redis down" is a cluster of the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.servers import LocalCluster, start_cluster
from tests.cluster.suites import reuse

pytestmark = pytest.mark.cluster

globals().update(
    reuse(
        "tests.integration.test_token_revocation",
        leave_out={
            "test_checking_a_token_costs_no_round_trip_of_its_own": (
                "a cluster pipeline writes once to each node it spans, at once; "
                "the standalone suite counts the one round trip"
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
