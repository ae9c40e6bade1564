"""The worker function's job (tests/integration/test_worker.py) on Redis Cluster."""

from __future__ import annotations

import pytest

from tests.cluster.suites import reuse

pytestmark = pytest.mark.cluster

globals().update(reuse("tests.integration.test_worker"))
