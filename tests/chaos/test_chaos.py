"""Short forms of ``make chaos``: the same scenarios, small, on servers of their own.

Each asserts what the full run asserts (nothing lost, every order terminal,
stock consistent, no dead letters; 503 problem+json while PostgreSQL is
down; no server error or schema violation from any API operation; every loss
of Redis data detected and repaired; no checkout charged twice, no hold
leaked, each email sent once), never how fast: timing is ``make bench``'s
business.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storefront_dev.bench.environment import BenchEnvironment, bench_environment
from storefront_dev.chaos.checkouts import Plan, run_checkouts
from storefront_dev.chaos.kills import run_kills
from storefront_dev.chaos.outages import run_postgres_outage, run_redis_outage
from storefront_dev.chaos.redis_loss import run_redis_loss
from storefront_dev.chaos.schema_fuzz import run_schema_fuzz
from storefront_dev.chaos.servers import ChaosPostgres, ChaosRedis, FailoverRedis


@pytest.fixture(scope="module")
def chaos_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosPostgres]:
    server = ChaosPostgres(tmp_path_factory.mktemp("chaos") / "pg")
    server.start()
    yield server
    server.remove()


@pytest.fixture(scope="module")
def chaos_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosRedis]:
    server = ChaosRedis(tmp_path_factory.mktemp("chaos") / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def chaos_env(chaos_postgres: ChaosPostgres, chaos_redis: ChaosRedis) -> Iterator[BenchEnvironment]:
    with bench_environment(chaos_postgres.url, chaos_redis.url, label="chaos") as env:
        yield env


async def test_killing_relay_and_workers_loses_nothing(
    chaos_env: BenchEnvironment, tmp_path: Path
) -> None:
    report = await run_kills(chaos_env, orders=150, clients=8, kills=3, logs=tmp_path, seed=7)

    assert sum(report.kills.values()) == 3
    assert report.orders == 150
    assert set(report.statuses) <= {"CONFIRMED", "REJECTED"}
    assert report.dead_letters == 0


async def test_redis_killed_and_restarted_loses_nothing(
    chaos_env: BenchEnvironment, chaos_redis: ChaosRedis, tmp_path: Path
) -> None:
    lines = await run_redis_outage(chaos_env, chaos_redis, quick=True, logs=tmp_path)

    assert any("all answered" in line for line in lines)
    assert any(line.startswith("streams repaired: ") for line in lines)


async def test_postgres_stopped_answers_503_and_recovers(
    chaos_env: BenchEnvironment, chaos_postgres: ChaosPostgres
) -> None:
    lines = await run_postgres_outage(chaos_env, chaos_postgres, quick=True)

    assert any("recovered" in line for line in lines)


def test_every_api_operation_keeps_to_its_schema(
    chaos_env: BenchEnvironment, tmp_path: Path
) -> None:
    report = run_schema_fuzz(chaos_env, examples=2, logs=tmp_path, seed=4, coverage=False)

    assert report.passed, "\n".join(report.lines())
    assert len(report.tallies) >= 25
    assert all(tally.cases for tally in report.tallies.values())


@pytest.fixture
def failover_redis(tmp_path: Path) -> Iterator[FailoverRedis]:
    servers = FailoverRedis(tmp_path / "redis-loss")
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


@pytest.fixture
def failover_env(
    chaos_postgres: ChaosPostgres, failover_redis: FailoverRedis
) -> Iterator[BenchEnvironment]:
    with bench_environment(chaos_postgres.url, failover_redis.url, label="chaos") as env:
        yield env


async def test_redis_losing_data_loses_no_event(
    failover_env: BenchEnvironment, failover_redis: FailoverRedis, tmp_path: Path
) -> None:
    """FLUSHALL, a restart without persistence, a failover to a lagging replica:
    each detected and repaired, every redelivery absorbed."""
    report = await run_redis_loss(
        failover_env, failover_redis, quick=True, logs=tmp_path, settle_seconds=60, seed=5
    )

    assert [fault for fault, *_ in report.faults] == [
        "FLUSHALL #1",
        "FLUSHALL #2",
        "SIGKILL, restarted empty",
        "failover to a lagging replica",
    ]
    assert report.pending_at_kill > 0
    assert report.replica_behind > 0
    assert report.repairs >= 4
    assert report.republished > 0
    assert report.metrics["EventsDuplicate"] > 0
    assert set(report.statuses) <= {"CONFIRMED", "REJECTED", "CANCELLED"}
    assert sum(report.statuses.values()) == report.orders
    assert report.dead_letters == 0


async def test_checkouts_survive_killed_workers_and_a_provider_drop(
    chaos_env: BenchEnvironment, tmp_path: Path
) -> None:
    """Customers pay (or are declined, walk away, cancel once confirmed) on
    localstripe while the payments and notifications workers are SIGKILLed
    and localstripe is SIGSTOPped for longer than the SDK's timeout. The
    books (one payment kept per confirmed order, every other refunded, holds
    released, one email per event) are checked inside run_checkouts."""
    report = await run_checkouts(
        chaos_env,
        checkouts=40,
        rate=5,
        at_once=40,
        containers=6,
        kills=3,
        logs=tmp_path,
        hold_seconds=15,
        drop_seconds=8,
        settle_seconds=120,
        seed=11,
    )

    assert report.checkouts == 40
    assert sum(report.kills.values()) == 3
    assert set(report.kills) <= {"PaymentsWorkerFunction", "NotificationsWorkerFunction"}
    assert report.drop_seconds >= 8
    assert report.catch_up_seconds is not None
    assert sum(report.statuses.values()) == 40
    assert set(report.statuses) <= {"CONFIRMED", "EXPIRED", "PAYMENT_FAILED", "CANCELLED"}
    assert report.plans[Plan.PAY] > 0
    assert report.payments > 0
    assert report.confirmations >= report.statuses.get("CONFIRMED", 0)
    assert report.dead_letters == 0
