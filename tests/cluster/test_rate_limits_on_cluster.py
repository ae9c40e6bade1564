"""Rate limits (tests/integration/test_rate_limits.py) on Redis Cluster, the
window script on the container's cluster client and ``limits``' cluster storage
reading the same windows, with the fail-open test on a cluster that goes down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.servers import LocalCluster, start_cluster
from tests.cluster.suites import reuse

pytestmark = pytest.mark.cluster

globals().update(reuse("tests.integration.test_rate_limits"))


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[LocalCluster]:
    """Replaces the suite's: a cluster of the test's own, stopped mid-test."""
    cluster = start_cluster(tmp_path)
    yield cluster
    cluster.stop()
