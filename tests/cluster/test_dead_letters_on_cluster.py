"""Dead letters (tests/integration/test_dead_letters.py) on Redis Cluster."""

from __future__ import annotations

import pytest

from tests.cluster.suites import reuse

pytestmark = pytest.mark.cluster

globals().update(reuse("tests.integration.test_dead_letters"))
