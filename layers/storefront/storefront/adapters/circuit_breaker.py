"""A circuit breaker for the cache.

Written here rather than taken from a library: pybreaker's asyncio support is
Tornado-only, and the asyncio ones (aiobreaker, purgatory) are unmaintained or
built around per-call state stores. What the cache needs is tiny: after a
failure, skip Redis for a cooldown, then let one request try again.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class CircuitBreaker:
    def __init__(
        self, cooldown_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return self._clock() < self._open_until

    def record_failure(self) -> None:
        self._open_until = self._clock() + self._cooldown

    def record_success(self) -> None:
        self._open_until = 0.0
