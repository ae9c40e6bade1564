from storefront.adapters.circuit_breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_failure_opens_it_for_the_cooldown_only() -> None:
    clock = Clock()
    breaker = CircuitBreaker(cooldown_seconds=5, clock=clock)
    assert not breaker.is_open

    breaker.record_failure()
    clock.now += 4.9
    assert breaker.is_open
    clock.now += 0.2
    assert not breaker.is_open


def test_a_success_closes_it() -> None:
    breaker = CircuitBreaker(cooldown_seconds=60, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    assert not breaker.is_open
