"""Cache.put on Redis Cluster: tests/integration/test_cache_write_through.py again
(the value and its lease share a hash tag, so the write-through pipeline and
the fill script's SET NX each touch one slot)."""

from __future__ import annotations

import pytest

from tests.cluster.suites import reuse

pytestmark = pytest.mark.cluster

globals().update(reuse("tests.integration.test_cache_write_through"))
