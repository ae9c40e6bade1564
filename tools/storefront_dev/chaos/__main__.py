"""``make chaos``: fault injection against servers of its own; fails loudly on any loss.

python -m storefront_dev.chaos [--quick] [--only kills,redis,postgres,schema,redis-loss,checkout]

Starts its own PostgreSQL and Redis on free ports (:mod:`.servers`), so it
can stop and kill them; it never signals a process it did not start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from storefront_dev.bench.environment import bench_environment
from storefront_dev.chaos.checkouts import run_checkouts
from storefront_dev.chaos.kills import ChaosFailure, run_kills
from storefront_dev.chaos.outages import run_postgres_outage, run_redis_outage
from storefront_dev.chaos.redis_loss import run_redis_loss
from storefront_dev.chaos.schema_fuzz import run_schema_fuzz
from storefront_dev.chaos.servers import ChaosPostgres, ChaosRedis, FailoverRedis

SCENARIOS = ("kills", "redis", "postgres", "schema", "redis-loss", "checkout")


def step(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated subset")
    parser.add_argument("--orders", type=int, help="orders in scenario 1 (default 10,000)")
    parser.add_argument(
        "--checkouts", type=int, help="checkouts in scenario 6 (default 1,000; --quick 60)"
    )
    parser.add_argument(
        "--examples", type=int, help="scenario 4: generated cases per pass (default 50)"
    )
    parser.add_argument("--seed", type=int, help="random seed, to replay a run's kills or cases")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    figures = _quiet_in_process_apps()
    failures = 0
    with tempfile.TemporaryDirectory(prefix="sf-chaos-") as scratch:
        root = Path(scratch)
        postgres = ChaosPostgres(root / "pg")
        redis = ChaosRedis(root / "redis")
        postgres.start()
        redis.start()
        step(f"own servers: PostgreSQL on {postgres.port}, Redis on {redis.port} (logs in {root})")
        try:
            for name in names:
                started = time.monotonic()
                step(f"scenario {name} ...")
                try:
                    with contextlib.ExitStack() as stack:
                        redis_url = redis.url
                        failover = None
                        if name == "redis-loss":
                            # Servers of its own: a primary, replicas, an endpoint.
                            failover = FailoverRedis(root / "redis-loss")
                            stack.callback(failover.stop)
                            failover.start()
                            redis_url = failover.url
                        env = stack.enter_context(
                            bench_environment(postgres.url, redis_url, label="chaos")
                        )
                        lines = _run(name, env, postgres, redis, root, args, failover)
                except ChaosFailure as failure:
                    failures += 1
                    print(f"FAILED {name}: {failure}", file=figures)
                    continue
                print(f"{name}: passed in {time.monotonic() - started:.0f} s", file=figures)
                for line in lines:
                    print(f"  {line}", file=figures)
        finally:
            redis.stop()
            postgres.remove()
    return 1 if failures else 0


def _quiet_in_process_apps() -> TextIO:
    """The scenarios' clients call the API apps in this process: their request
    logs and EMF metrics (printed to stdout) would bury the scenario's own
    figures. Stdout goes to /dev/null; the figures go to the returned stream,
    the real stdout."""
    figures = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    from storefront.observability import logger

    logger.setLevel("ERROR")
    return figures


def _run(
    name: str,
    env: object,
    postgres: ChaosPostgres,
    redis: ChaosRedis,
    root: Path,
    args: argparse.Namespace,
    failover: FailoverRedis | None = None,
) -> list[str]:
    from storefront_dev.bench.environment import BenchEnvironment

    assert isinstance(env, BenchEnvironment)
    if name == "kills":
        orders = args.orders or (300 if args.quick else 10_000)
        report = asyncio.run(
            run_kills(
                env,
                orders=orders,
                clients=16,
                kills=4 if args.quick else 20,
                logs=root,
                seed=args.seed,
            )
        )
        return report.lines()
    if name == "redis":
        return asyncio.run(run_redis_outage(env, redis, quick=args.quick, logs=root))
    if name == "redis-loss":
        assert failover is not None
        lost = asyncio.run(
            run_redis_loss(env, failover, quick=args.quick, logs=root, seed=args.seed)
        )
        return lost.lines()
    if name == "checkout":
        checked = asyncio.run(
            run_checkouts(
                env,
                checkouts=args.checkouts or (60 if args.quick else 1_000),
                rate=5 if args.quick else 3,
                at_once=60 if args.quick else 150,
                containers=8 if args.quick else 16,
                kills=4 if args.quick else 16,
                hold_seconds=20 if args.quick else 30,
                logs=root,
                seed=args.seed,
            )
        )
        return checked.lines()
    if name == "schema":
        examples = args.examples or (10 if args.quick else 50)
        fuzzed = run_schema_fuzz(env, examples=examples, logs=root, seed=args.seed)
        if not fuzzed.passed:
            raise ChaosFailure("\n".join(fuzzed.lines()))
        return fuzzed.lines()
    return asyncio.run(run_postgres_outage(env, postgres, quick=args.quick))


if __name__ == "__main__":
    sys.exit(main())
