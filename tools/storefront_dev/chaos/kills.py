"""Chaos scenario 1: orders keep coming while the relay and workers are SIGKILLed.

Concurrent clients place orders through the orders API (each client its own
"container": its own app, engine and Redis client, an Idempotency-Key per
order, retried on 5xx and 409 as a client should). Meanwhile the relay and
both workers run as real processes, two of each (overlapping invocations, as
the schedules make them), and a random one of them is SIGKILLed and started
again, ``kills`` times. Then the pipeline is left to settle, and the books
are checked: every order terminal, every event relayed and handled by its
group exactly once, reserved stock equal to what the confirmed orders hold,
no dead letters. A killed worker's entries are delivered again; its group's
position in PostgreSQL makes the redelivery a no-op.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from storefront import wiring
from storefront.events.partitions import stream_key
from storefront.resources import Resources
from storefront_dev.bench.environment import BenchEnvironment
from storefront_dev.bench.fixtures import seed_products
from storefront_dev.bench.processes import SAGA_FUNCTIONS, FunctionProcess

__all__ = [
    "SAGA_GROUPS",
    "TERMINAL",
    "ChaosFailure",
    "KillReport",
    "check_books",
    "repairs_recorded",
    "reserved_not_confirmed",
    "run_kills",
    "settle",
    "unsettled",
]

# A killed worker's partition leases expire after this (the deployed 90 s
# would stall its partitions for that long after every kill); the pending
# entries it left are re-read by the next holder.
CHAOS_FUNCTION_ENVIRONMENT = {"WORKER_CLAIM_MIN_IDLE_MS": "5000", "WORKER_BLOCK_MS": "500"}


class ChaosFailure(AssertionError):
    """Something was lost or left inconsistent: the scenario fails loudly."""


@dataclass
class KillReport:
    orders: int = 0
    clients: int = 0
    client_retries: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, int] = field(default_factory=dict)
    events: int = 0
    stream_entries: int = 0
    duplicate_entries: int = 0
    dead_letters: int = 0
    seconds_placing: float = 0.0
    seconds_settling: float = 0.0
    placed: bool = False  # every order accepted

    def lines(self) -> list[str]:
        kills = ", ".join(f"{name} {count}" for name, count in sorted(self.kills.items()))
        return [
            f"orders placed: {self.orders:,} by {self.clients} concurrent clients"
            f" in {self.seconds_placing:.1f} s ({self.client_retries} client retries)",
            f"SIGKILLs: {sum(self.kills.values())} ({kills})",
            f"settled {self.seconds_settling:.1f} s after the last order",
            f"orders: {self.statuses}",
            f"events: {self.events:,} written, 0 lost; {self.stream_entries:,} stream entries,"
            f" {self.duplicate_entries} twice (checked appends: a killed relay's append is"
            " adopted, never repeated)",
            f"dead letters: {self.dead_letters}; reserved stock = confirmed quantities: yes",
        ]


async def _client(
    env: BenchEnvironment,
    products: list[uuid.UUID],
    orders: asyncio.Queue[int],
    report: KillReport,
    rng: random.Random,
) -> None:
    resources = Resources.from_settings(env.settings)
    transport = httpx.ASGITransport(app=wiring.orders_app(lambda: resources))
    subject = f"chaos-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {env.token(subject)}"}
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://chaos") as client:
            while True:
                try:
                    orders.get_nowait()
                except asyncio.QueueEmpty:
                    return
                lines = rng.sample(products, rng.randint(1, 2))
                body = {
                    "items": [{"product_id": str(p), "quantity": rng.randint(1, 3)} for p in lines]
                }
                key = {"Idempotency-Key": uuid.uuid4().hex, **headers}
                for attempt in range(50):
                    response = await client.post("/orders", json=body, headers=key)
                    if response.status_code == 201:
                        report.orders += 1
                        break
                    if response.status_code < 500 and response.status_code not in (409, 429):
                        raise ChaosFailure(f"order refused: {response.status_code} {response.text}")
                    report.client_retries += 1
                    await asyncio.sleep(0.05 * (attempt + 1))
                else:
                    raise ChaosFailure("an order was not accepted after 50 attempts")
    finally:
        await resources.close()


async def _killer(
    processes: list[FunctionProcess],
    kills: int,
    orders: int,
    report: KillReport,
    rng: random.Random,
) -> None:
    """``kills`` SIGKILLs spread over the orders being placed (whatever the
    machine's pace), then, if any are left, over the settling."""
    for index in range(kills):
        due = (index + rng.uniform(0.5, 1.5)) * orders / (kills + 1)
        while report.orders < min(due, orders - 1) and not report.placed:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if report.placed:
            await asyncio.sleep(rng.uniform(0.2, 1.0))
        victim = rng.choice(processes)
        victim.kill()
        report.kills[victim.function] += 1
        # The next invocation, in a new container: a cold start, then on.
        await asyncio.to_thread(victim.start)


TERMINAL = frozenset({"CONFIRMED", "REJECTED", "CANCELLED"})

# The groups whose workers the scenarios run (SAGA_FUNCTIONS).
SAGA_GROUPS = ("inventory", "orders")

# Per (group, partition): events relayed that the group has not settled yet.
# Every group reads every stream (an event it has no handler for is settled
# as skipped), so a group is done when its position reaches the partition's
# last published sequence. PostgreSQL's view: whatever Redis lost, this is
# what was, or was not, handled.
_UNSETTLED = """
SELECT g.group_name, o.partition, max(o.sequence) AS last_sequence,
       coalesce(max(p.sequence), 0) AS settled
FROM outbox o
CROSS JOIN unnest($1::text[]) AS g(group_name)
LEFT JOIN consumer_positions p ON p.group_name = g.group_name AND p.partition = o.partition
WHERE o.published_at IS NOT NULL
GROUP BY g.group_name, o.partition
HAVING max(o.sequence) > coalesce(max(p.sequence), 0)
ORDER BY g.group_name, o.partition
"""


async def unsettled(connection: asyncpg.Connection, groups: Sequence[str]) -> list[asyncpg.Record]:
    """(group, partition) pairs whose group has not settled every relayed event."""
    return list(await connection.fetch(_UNSETTLED, list(groups)))


async def settle(connection: asyncpg.Connection, seconds: float) -> None:
    """Until no order is pending, every outbox row is published and every
    saga group has settled every event."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pending = await connection.fetchval(
            "SELECT (SELECT count(*) FROM orders WHERE status = 'PENDING')"
            " + (SELECT count(*) FROM outbox WHERE published_at IS NULL)"
        )
        if pending == 0 and not await connection.fetch(_UNSETTLED, list(SAGA_GROUPS)):
            return
        await asyncio.sleep(0.5)
    raise ChaosFailure(f"the pipeline did not settle within {seconds:.0f} s")


async def repairs_recorded(connection: asyncpg.Connection) -> tuple[int, int]:
    """(stream repairs, events republished) as the relay recorded them."""
    row = await connection.fetchrow(
        "SELECT coalesce(sum(repairs), 0) AS repairs,"
        " coalesce(sum(events_republished), 0) AS republished FROM event_partitions"
    )
    assert row is not None
    return int(row["repairs"]), int(row["republished"])


async def reserved_not_confirmed(connection: asyncpg.Connection) -> list[dict[str, object]]:
    """Products whose reserved stock is not what their CONFIRMED orders hold."""
    rows = await connection.fetch(
        """
        SELECT s.product_id, s.reserved, coalesce(c.quantity, 0) AS confirmed
        FROM stock_levels s LEFT JOIN (
            SELECT i.product_id, sum(i.quantity) AS quantity FROM order_items i
            JOIN orders o ON o.id = i.order_id AND o.status = 'CONFIRMED' GROUP BY i.product_id
        ) c ON c.product_id = s.product_id
        WHERE s.reserved <> coalesce(c.quantity, 0)
        """
    )
    return [dict(row) for row in rows]


async def check_books(
    env: BenchEnvironment,
    connection: asyncpg.Connection,
    report: KillReport,
    *,
    streams_complete: bool = True,
) -> None:
    """The books after settling. ``streams_complete``: every event must also be
    on its stream, once (not so after Redis lost data: a repaired stream holds
    only what some group had not settled; PostgreSQL's positions are the check)."""
    rows = await connection.fetch("SELECT status, count(*) AS n FROM orders GROUP BY status")
    report.statuses = {row["status"]: row["n"] for row in rows}
    if sum(report.statuses.values()) != report.orders:
        raise ChaosFailure(f"{report.orders} orders accepted, {report.statuses} stored")
    if set(report.statuses) - TERMINAL:
        raise ChaosFailure(f"orders not terminal: {report.statuses}")
    unpublished = await connection.fetchval(
        "SELECT count(*) FROM outbox WHERE published_at IS NULL"
    )
    unsettled = await connection.fetch(_UNSETTLED, list(SAGA_GROUPS))
    if unpublished or unsettled:
        raise ChaosFailure(
            f"events lost: {unpublished} unpublished; not settled: {[dict(r) for r in unsettled]}"
        )
    mismatched = await reserved_not_confirmed(connection)
    if mismatched:
        raise ChaosFailure(f"reserved stock != confirmed: {mismatched}")
    report.events = await connection.fetchval("SELECT count(*) FROM outbox")
    redis = Resources.from_settings(env.settings).redis
    try:
        seen: Counter[str] = Counter()
        for partition in range(env.settings.event_partitions):
            stream = stream_key(env.redis_key_prefix, partition)
            for _, fields in await redis.xrange(stream) or []:
                seen[str((fields or {}).get(b"outbox_id"))] += 1
        report.stream_entries = sum(seen.values())
        report.duplicate_entries = report.stream_entries - len(seen)
    finally:
        await redis.aclose()
    report.dead_letters = await connection.fetchval("SELECT count(*) FROM dead_letters")
    if streams_complete and (len(seen) != report.events or report.duplicate_entries):
        raise ChaosFailure(
            f"{report.events} events written, {len(seen)} on the streams,"
            f" {report.duplicate_entries} twice"
        )
    if report.dead_letters:
        raise ChaosFailure(f"{report.dead_letters} dead letters")


async def run_kills(
    env: BenchEnvironment,
    *,
    orders: int,
    clients: int,
    kills: int,
    logs: Path,
    settle_seconds: float = 180.0,
    seed: int | None = None,
) -> KillReport:
    rng = random.Random(seed)
    report = KillReport(clients=clients)
    connection = await asyncpg.connect(env.database_url)
    environment = env.environment() | CHAOS_FUNCTION_ENVIRONMENT
    processes = [
        FunctionProcess(name, environment, log=logs / f"{name}-{copy}.log")
        for name in SAGA_FUNCTIONS
        for copy in (1, 2)
    ]
    try:
        # Stock for about nine orders in ten: some are rejected, most confirmed.
        products = await seed_products(connection, 20, on_hand=max(1, orders * 3 * 9 // 200))
        await asyncio.gather(*(asyncio.to_thread(process.start) for process in processes))
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(orders):
            queue.put_nowait(index)
        killer = asyncio.create_task(_killer(processes, kills, orders, report, rng))
        started = time.monotonic()
        await asyncio.gather(*(_client(env, products, queue, report, rng) for _ in range(clients)))
        report.placed = True
        report.seconds_placing = time.monotonic() - started
        await killer
        settled = time.monotonic()
        await settle(connection, settle_seconds)
        report.seconds_settling = time.monotonic() - settled
        await check_books(env, connection, report)
    finally:
        for process in processes:
            process.stop()
        await connection.close()
    return report
