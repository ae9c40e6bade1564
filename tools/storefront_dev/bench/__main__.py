"""``make bench``: Storefront's benchmarks, each against a reference in the same run.

python -m storefront_dev.bench [--quick] [--only relay,worker,...,search] [--markdown]

Prints a table and writes ``bench/results.json``: every figure with its unit,
its reference and their ratio, the target where there is one, and the machine
(CPU count and model, Python, PostgreSQL and Redis versions). Servers: those
``BENCH_DATABASE_URL`` / ``BENCH_REDIS_URL`` (else ``TEST_*``) name, else
embedded ones; the run works in a database and a Redis key prefix of its own
and removes both at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from storefront_dev.bench.cold_start import bench_cold_start
from storefront_dev.bench.environment import BenchEnvironment, bench_environment, server_urls
from storefront_dev.bench.fixtures import seed_products
from storefront_dev.bench.latency import bench_latency
from storefront_dev.bench.measure import Report, machine
from storefront_dev.bench.pagination import bench_pagination
from storefront_dev.bench.processes import project_root
from storefront_dev.bench.relay import bench_relay
from storefront_dev.bench.search import bench_search
from storefront_dev.bench.warm import bench_warm
from storefront_dev.bench.worker import bench_worker

BENCHMARKS = ("relay", "worker", "latency", "warm", "cold", "pagination", "search")


@dataclass(frozen=True)
class Sizes:
    relay_rows: int = 100_000
    tutorial_rows: int = 2_000
    relay_repeats: int = 3
    worker_events: int = 2_000
    worker_repeats: int = 2
    rate: float = 200.0
    seconds: float = 30.0
    gentle_rate: float = 20.0
    gentle_seconds: float = 10.0
    saga_orders: int = 3_000
    ceiling_seconds: float = 3.0
    warm_rounds: int = 500
    cold_repeats: int = 6
    page_rows: int = 100_100
    page_depth: int = 100_000
    page_requests: int = 200
    search_rows: int = 100_000
    search_requests: int = 200


# For trying the suite out (and for its own test): every code path, small.
QUICK = Sizes(
    relay_rows=3_000,
    tutorial_rows=200,
    relay_repeats=1,
    worker_events=200,
    worker_repeats=1,
    rate=50.0,
    seconds=2.0,
    gentle_rate=20.0,
    gentle_seconds=1.0,
    saga_orders=300,
    ceiling_seconds=1.0,
    warm_rounds=30,
    cold_repeats=1,
    page_rows=3_000,
    page_depth=2_000,
    page_requests=20,
    search_rows=3_000,
    search_requests=20,
)


def step(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def _runners(
    env: BenchEnvironment, report: Report, sizes: Sizes, logs: Path
) -> dict[str, Callable[[], Any]]:
    async def product() -> str:
        connection = await asyncpg.connect(env.database_url)
        try:
            (found,) = await seed_products(connection, 1, on_hand=1, label="cold")
            return str(found)
        finally:
            await connection.close()

    return {
        "relay": lambda: asyncio.run(
            bench_relay(
                env,
                report,
                rows=sizes.relay_rows,
                tutorial_rows=sizes.tutorial_rows,
                repeats=sizes.relay_repeats,
            )
        ),
        "worker": lambda: asyncio.run(
            bench_worker(env, report, events=sizes.worker_events, repeats=sizes.worker_repeats)
        ),
        "latency": lambda: asyncio.run(
            bench_latency(
                env,
                report,
                rate=sizes.rate,
                seconds=sizes.seconds,
                gentle_rate=sizes.gentle_rate,
                gentle_seconds=sizes.gentle_seconds,
                saga_orders=sizes.saga_orders,
                ceiling_seconds=sizes.ceiling_seconds,
                logs=logs,
            )
        ),
        "warm": lambda: bench_warm(env, report, rounds=sizes.warm_rounds),
        "cold": lambda: bench_cold_start(
            env, report, product_id=asyncio.run(product()), repeats=sizes.cold_repeats
        ),
        "pagination": lambda: asyncio.run(
            bench_pagination(
                env,
                report,
                rows=sizes.page_rows,
                depth=sizes.page_depth,
                requests=sizes.page_requests,
            )
        ),
        "search": lambda: asyncio.run(
            bench_search(env, report, rows=sizes.search_rows, requests=sizes.search_requests)
        ),
    }


def run(names: Sequence[str], sizes: Sizes, output: Path) -> Report:
    report = Report()
    with server_urls() as (server_url, redis_url), bench_environment(server_url, redis_url) as env:
        described = machine() | asyncio.run(env.versions()) | {"sizes": sizes.__dict__}
        step(
            f"{described['cpu_count']} x {described['cpu_model']}, Python {described['python']},"
            f" PostgreSQL {described['postgresql']}, Redis {described['redis']}"
        )
        with tempfile.TemporaryDirectory(prefix="sf-bench-logs-") as logs:
            runners = _runners(env, report, sizes, Path(logs))
            for name in names:
                step(f"{name} ...")
                started = time.monotonic()
                runners[name]()
                step(f"{name} done in {time.monotonic() - started:.0f} s")
        report.write(output, described)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    parser.add_argument("--output", type=Path, default=project_root() / "bench" / "results.json")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; choose from {', '.join(BENCHMARKS)}")
    started = time.monotonic()
    report = run(names, QUICK if args.quick else Sizes(), args.output)
    print(report.table())
    for note in report.notes:
        print(f"- {note}")
    if args.markdown:
        print()
        print(report.markdown())
    step(f"wrote {args.output} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
