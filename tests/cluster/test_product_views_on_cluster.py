"""Product views on Redis Cluster: tests/integration/test_product_views.py, whose
counters, flush script and popularity transaction share the {views} hash tag."""

from __future__ import annotations

import pytest

from tests.cluster.suites import reuse

pytestmark = pytest.mark.cluster

globals().update(
    reuse(
        "tests.integration.test_product_views",
        leave_out={
            "test_with_redis_down_views_are_accepted_and_popular_reads_postgres": (
                "stops a standalone server of its own; the fallback is the client's, not the"
                " cluster's"
            ),
        },
    )
)
