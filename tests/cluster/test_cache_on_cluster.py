"""Cache-aside on Redis Cluster: tests/integration/test_cache_resilience.py and the
catalog API's cache tests; "Redis down" is a cluster of the test's own, stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.servers import LocalCluster, start_cluster
from tests.cluster.suites import reuse

pytestmark = pytest.mark.cluster

globals().update(
    reuse(
        "tests.integration.test_cache_resilience",
        leave_out={
            "test_cache_recovers_when_redis_returns": "revives a standalone server on its port",
            "test_open_breaker_skips_redis_entirely": (
                "the breaker skips either client alike; the stopped-mid-test test covers "
                "the errors a cluster client raises"
            ),
        },
    )
)
globals().update(
    reuse(
        "tests.integration.test_catalog_api",
        only={
            "test_create_then_read_through_the_cache",
            "test_if_none_match_answers_304",
            "test_patch_invalidates_the_cached_product",
            "test_delete_invalidates_product_and_lists",
            "test_a_write_makes_cached_list_pages_stale",
            "test_health",
        },
    )
)

globals().update(
    reuse(
        "tests.integration.test_cache_read_ahead",
        leave_out={
            "test_a_cache_hit_costs_one_redis_round_trip": (
                "a cluster pipeline writes once per node it reaches, at the same time"
            ),
            "test_a_cached_list_page_reads_its_version_ahead": (
                "a cluster pipeline writes once per node it reaches, at the same time"
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
