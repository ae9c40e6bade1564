"""Benchmark 1: outbox relay throughput, against a hand-written floor and the tutorial.

Each run starts from the same state: ``rows`` unpublished outbox rows of
realistic ``OrderPlaced`` envelopes spread over the partitions, and empty
streams. It times how long the relay takes to publish them all.

* subject: :func:`storefront.events.relay.relay_once`, the production pass;
* floor: the same work written by hand on one raw asyncpg connection (same
  claim query and batch size, pipelined ``XADD`` with the relay's explicit
  ids ``<sequence>-0``, the envelope sent as the text PostgreSQL returns, the
  rows marked with their sequence and the partition's last sequence recorded
  in ``event_partitions``), what one would write with no framework at all
  (without the relay's checked append, its locks and its repair);
* tutorial: a new Redis connection and a commit per event, as many tutorials
  show. It is slow enough that a few thousand rows give its rate; running it
  over 100k rows would take minutes, so its rate is measured on fewer rows
  and the report says so.
"""

from __future__ import annotations

import time
from decimal import Decimal
from uuid import uuid4

import asyncpg
from redis.asyncio import Redis

from storefront.adapters.database import create_engine
from storefront.adapters.redis import RedisClient, create_redis
from storefront.events.envelope import Event
from storefront.events.partitions import stream_key
from storefront.events.positions import entry_id
from storefront.events.relay import relay_once
from storefront.orders.events import OrderLine, OrderPlaced
from storefront_dev.bench.environment import BenchEnvironment
from storefront_dev.bench.measure import Figure, Report, interleaved_async, median

__all__ = ["bench_relay", "sample_envelope", "seed_outbox"]

# The relay's own claim (see storefront.events.relay._claim, why the range).
_CLAIM = """
SELECT id, envelope::text AS envelope FROM outbox
WHERE partition BETWEEN $1 AND $1 AND published_at IS NULL
ORDER BY partition, id LIMIT $2 FOR UPDATE
"""
_MARK = """
WITH marked AS (
    UPDATE outbox SET published_at = now(), sequence = batch.sequence
    FROM unnest($1::bigint[], $2::bigint[]) AS batch(id, sequence)
    WHERE outbox.id = batch.id
)
INSERT INTO event_partitions (partition, last_sequence) VALUES ($3, $4)
ON CONFLICT (partition) DO UPDATE SET last_sequence = excluded.last_sequence
"""


def sample_envelope() -> str:
    """A realistic OrderPlaced envelope (two lines), as JSON text."""
    order_id = uuid4()
    lines = [
        OrderLine(product_id=uuid4(), quantity=quantity, unit_price=Decimal("12.50"))
        for quantity in (1, 2)
    ]
    placed = OrderPlaced(order_id=order_id, items=lines, total=Decimal("37.50"), currency="EUR")
    return Event.of(placed, order_id, correlation_id="bench").model_dump_json()


async def seed_outbox(connection: asyncpg.Connection, rows: int, partitions: int) -> None:
    """``rows`` unpublished rows, each with its own event and aggregate id, and
    no partition published yet (streams are emptied alongside)."""
    await connection.execute("TRUNCATE outbox, event_partitions")
    await connection.execute(
        """
        INSERT INTO outbox
            (event_id, event_type, version, aggregate_type, aggregate_id, partition, envelope)
        SELECT s.id, 'OrderPlaced', 1, 'order', s.aggregate, (s.n % $2)::smallint,
               $1::jsonb || jsonb_build_object('event_id', s.id::text, 'aggregate_id', s.aggregate)
        FROM (SELECT gen_random_uuid() AS id, gen_random_uuid()::text AS aggregate, n
              FROM generate_series(1, $3) AS n) AS s
        """,
        sample_envelope(),
        partitions,
        rows,
    )
    # Fresh statistics, so every run plans the claim on the partial index.
    await connection.execute("ANALYZE outbox")


async def _clear_streams(redis: RedisClient, env: BenchEnvironment) -> None:
    streams = [
        stream_key(env.redis_key_prefix, partition)
        for partition in range(env.settings.event_partitions)
    ]
    await redis.delete(*streams)


async def _floor_pass(
    connection: asyncpg.Connection, redis: RedisClient, prefix: str, partitions: int, batch: int
) -> int:
    """The hand-written relay: claim, pipelined XADD, mark, commit; per partition batch."""
    relayed = 0
    last = dict.fromkeys(range(partitions), 0)  # streams and event_partitions start empty
    due = list(range(partitions))
    while due:
        full = []
        for partition in due:
            async with connection.transaction():
                rows = await connection.fetch(_CLAIM, partition, batch)
                if not rows:
                    continue
                sequences = range(last[partition] + 1, last[partition] + len(rows) + 1)
                async with redis.pipeline(transaction=False) as pipe:
                    stream = stream_key(prefix, partition)
                    for row, sequence in zip(rows, sequences, strict=True):
                        pipe.xadd(
                            stream,
                            {"envelope": str(row["envelope"]), "outbox_id": row["id"]},
                            id=entry_id(sequence),
                        )
                    await pipe.execute()
                await connection.execute(
                    _MARK, [row["id"] for row in rows], list(sequences), partition, sequences[-1]
                )
                last[partition] = sequences[-1]
            relayed += len(rows)
            if len(rows) >= batch:
                full.append(partition)
        due = full
    return relayed


async def _tutorial(connection: asyncpg.Connection, redis_url: str, prefix: str, limit: int) -> int:
    """The tutorial relay: per event a fresh Redis connection, an XADD, a commit."""
    rows = await connection.fetch(
        "SELECT id, partition, envelope::text AS envelope FROM outbox"
        " WHERE published_at IS NULL ORDER BY id LIMIT $1",
        limit,
    )
    for row in rows:
        client = Redis.from_url(redis_url)
        try:
            await client.xadd(
                stream_key(prefix, row["partition"]),
                {"envelope": row["envelope"], "outbox_id": str(row["id"])},
            )
        finally:
            await client.aclose()
        # asyncpg autocommits a statement outside a transaction: one commit per event.
        await connection.execute("UPDATE outbox SET published_at = now() WHERE id = $1", row["id"])
    return len(rows)


async def bench_relay(
    env: BenchEnvironment, report: Report, *, rows: int, tutorial_rows: int, repeats: int
) -> None:
    settings = env.settings_of("OutboxRelayFunction")
    engine = create_engine(settings)
    redis = create_redis(settings)
    admin = await asyncpg.connect(env.database_url)
    floor_connection = await asyncpg.connect(env.database_url)
    tutorial_connection = await asyncpg.connect(env.database_url)

    async def prepare(count: int) -> None:
        await seed_outbox(admin, count, settings.event_partitions)
        await _clear_streams(redis, env)

    async def subject() -> float:
        await prepare(rows)
        started = time.perf_counter()
        stats = await relay_once(engine, redis, settings)
        elapsed = time.perf_counter() - started
        _check(stats.relayed, rows, "relay")
        return rows / elapsed

    async def floor() -> float:
        await prepare(rows)
        started = time.perf_counter()
        relayed = await _floor_pass(
            floor_connection,
            redis,
            env.redis_key_prefix,
            settings.event_partitions,
            settings.relay_batch_size,
        )
        elapsed = time.perf_counter() - started
        _check(relayed, rows, "floor")
        return rows / elapsed

    async def tutorial() -> float:
        await prepare(tutorial_rows)
        started = time.perf_counter()
        relayed = await _tutorial(
            tutorial_connection, env.redis_url, env.redis_key_prefix, tutorial_rows
        )
        elapsed = time.perf_counter() - started
        _check(relayed, tutorial_rows, "tutorial")
        return relayed / elapsed

    try:
        # A warm-up pass: first-use costs (connections, imports, plans) are not throughput.
        await prepare(min(rows, 2_000))
        await relay_once(engine, redis, settings)
        samples = await interleaved_async(
            {"floor": floor, "relay": subject, "tutorial": tutorial}, repeats
        )
    finally:
        await _clear_streams(redis, env)
        await admin.execute("TRUNCATE outbox, event_partitions")
        for connection in (admin, floor_connection, tutorial_connection):
            await connection.close()
        await redis.aclose()
        await engine.dispose()
    relay_rate, floor_rate, tutorial_rate = (
        median(samples[name]) for name in ("relay", "floor", "tutorial")
    )
    report.add(
        Figure(
            "1 relay",
            f"relay, {rows:,} rows",
            relay_rate,
            "events/s",
            reference="hand-written asyncpg floor",
            reference_value=floor_rate,
            target=1.0,
            better="higher",
            samples=repeats,
        )
    )
    report.add(
        Figure(
            "1 relay",
            f"relay, {rows:,} rows",
            relay_rate,
            "events/s",
            reference="tutorial pattern",
            reference_value=tutorial_rate,
            target=50.0,
            better="higher",
            samples=repeats,
            note=(
                f"the tutorial pattern's rate is measured over {tutorial_rows:,} rows and "
                f"extrapolated: over {rows:,} it would take "
                f"{rows / tutorial_rate:.0f} s per run"
            ),
        )
    )
    report.notes.append(
        f"1 relay: the tutorial pattern (new Redis connection and commit per event) was "
        f"timed over {tutorial_rows:,} rows ({tutorial_rate:,.0f} events/s) and its rate "
        f"compared with the relay's over {rows:,} rows."
    )


def _check(relayed: int, expected: int, who: str) -> None:
    if relayed != expected:
        raise RuntimeError(f"{who} relayed {relayed} rows of {expected}")
