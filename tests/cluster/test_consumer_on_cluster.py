"""The stream consumer (tests/integration/test_consumer.py) on Redis Cluster."""

from __future__ import annotations

import pytest

from tests.cluster.suites import reuse

pytestmark = pytest.mark.cluster

globals().update(
    reuse(
        "tests.integration.test_consumer",
        leave_out={
            "test_an_idle_consumer_blocks_instead_of_polling": (
                "counts commands on a plain Redis subclass; blocking is the same XREADGROUP"
            ),
        },
    )
)
