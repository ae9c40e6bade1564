"""Chaos scenario 5: Redis loses data while orders keep coming.

Redis runs without persistence, behind a proxy that plays the primary
endpoint (:class:`.servers.FailoverRedis`); the relay and both workers run
as real processes, two of each, as in scenario 1; clients place orders (and
cancel some) through the orders API. Meanwhile Redis loses data three ways:

a. ``FLUSHALL``, several times: streams, consumer groups, pending entries,
   leases, all gone at once.
b. SIGKILL, at a moment some group has entries delivered but not
   acknowledged, and a restart, empty.
c. A failover to a replica whose replication was cut a while before: the
   primary takes writes the replica never gets, is SIGKILLed, the replica is
   promoted and the endpoint moves to it. The streams now end before where
   PostgreSQL says the relay left them.

After each fault the relay must detect the divergence (``event_partitions.
repairs`` grows) and republish from the outbox what the groups had not
settled. Then the books are checked as in scenario 1, from PostgreSQL (the
streams themselves were lost, so they prove nothing): every order terminal,
every event published and settled by every group, reserved stock equal to
what the confirmed orders hold, no dead letters. The redeliveries the repairs
cause are counted from the workers' metrics (``EventsDuplicate``) and must
all have been absorbed, which the stock check proves.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import redis

from storefront import wiring
from storefront.events.partitions import stream_key
from storefront.events.positions import sequence_of
from storefront.resources import Resources
from storefront_dev.bench.environment import BenchEnvironment
from storefront_dev.bench.fixtures import seed_products
from storefront_dev.bench.processes import SAGA_FUNCTIONS, FunctionProcess
from storefront_dev.chaos.kills import (
    CHAOS_FUNCTION_ENVIRONMENT,
    SAGA_GROUPS,
    ChaosFailure,
    KillReport,
    check_books,
    repairs_recorded,
    settle,
)
from storefront_dev.chaos.servers import FailoverRedis

__all__ = ["RedisLossReport", "run_redis_loss"]

# Short invocations: each one ends by publishing its metrics (EMF, in the
# process's log), where the duplicates are counted; a 70 s invocation would
# still be running when the scenario ends.
INVOCATION_SECONDS = 6


@dataclass
class RedisLossReport:
    orders: int = 0
    cancelled: int = 0
    clients: int = 0
    client_retries: int = 0
    # (fault, streams repaired, seconds until the relay had repaired them)
    faults: list[tuple[str, int, float]] = field(default_factory=list)
    pending_at_kill: int = 0
    replica_behind: int = 0  # stream entries the promoted replica never got
    statuses: dict[str, int] = field(default_factory=dict)
    events: int = 0
    repairs: int = 0
    republished: int = 0
    metrics: Counter[str] = field(default_factory=Counter)
    dead_letters: int = 0
    seconds_flowing: float = 0.0
    seconds_settling: float = 0.0

    def lines(self) -> list[str]:
        faults = "; ".join(
            f"{fault}: {streams} streams repaired, the first {seconds:.2f} s after"
            for fault, streams, seconds in self.faults
        )
        return [
            f"orders placed: {self.orders:,} by {self.clients} concurrent clients"
            f" in {self.seconds_flowing:.1f} s, {self.cancelled} cancelled"
            f" ({self.client_retries} client retries)",
            f"faults (Redis without persistence): {faults}",
            f"SIGKILLed with {self.pending_at_kill} entries delivered, not acknowledged;"
            f" promoted replica {self.replica_behind} stream entries behind the primary",
            f"divergences detected: {self.repairs} stream repairs,"
            f" {self.republished:,} events republished from the outbox"
            " (event_partitions; relay metrics: "
            f"StreamRepairs {self.metrics['StreamRepairs']},"
            f" EventsRepublished {self.metrics['EventsRepublished']:,})",
            f"duplicates absorbed: {self.metrics['EventsDuplicate']:,} redelivered entries at or"
            f" below their group's position skipped (EventsDuplicate);"
            f" {self.metrics['EventsHandled']:,} handled",
            f"settled {self.seconds_settling:.1f} s after the last fault and order",
            f"orders: {self.statuses}",
            f"events: {self.events:,} written, 0 lost: every one settled by"
            f" {', '.join(SAGA_GROUPS)}; dead letters: {self.dead_letters};"
            " reserved stock = confirmed quantities: yes",
        ]


async def _client(
    env: BenchEnvironment,
    products: list[uuid.UUID],
    done: asyncio.Event,
    report: RedisLossReport,
    rng: random.Random,
) -> None:
    """Orders (and, for about one in eight, its cancellation) until ``done``."""
    resources = Resources.from_settings(env.settings)
    transport = httpx.ASGITransport(app=wiring.orders_app(lambda: resources))
    headers = {"Authorization": f"Bearer {env.token(f'chaos-{uuid.uuid4().hex[:8]}')}"}
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://chaos", headers=headers
        ) as client:
            while not done.is_set():
                lines = rng.sample(products, rng.randint(1, 2))
                body = {
                    "items": [{"product_id": str(p), "quantity": rng.randint(1, 3)} for p in lines]
                }
                key = {"Idempotency-Key": uuid.uuid4().hex}
                response = await _retried(client, "/orders", body, key, report)
                report.orders += 1
                if rng.random() < 0.125:
                    await asyncio.sleep(rng.uniform(0, 0.2))
                    path = f"/orders/{response.json()['id']}/cancel"
                    cancelled = await _retried(client, path, None, {}, report, conflict_ok=True)
                    report.cancelled += cancelled.status_code == 200
                await asyncio.sleep(rng.uniform(0.02, 0.08))
    finally:
        await resources.close()


async def _retried(
    client: httpx.AsyncClient,
    path: str,
    body: object,
    headers: dict[str, str],
    report: RedisLossReport,
    *,
    conflict_ok: bool = False,
) -> httpx.Response:
    for attempt in range(50):
        response = await client.post(path, json=body, headers=headers)
        if response.status_code in (200, 201) or (conflict_ok and response.status_code == 409):
            return response
        if response.status_code < 500 and response.status_code not in (409, 429):
            raise ChaosFailure(f"POST {path} refused: {response.status_code} {response.text}")
        report.client_retries += 1
        await asyncio.sleep(0.05 * (attempt + 1))
    raise ChaosFailure(f"POST {path} not accepted after 50 attempts")


def _tails(client: redis.Redis, env: BenchEnvironment) -> list[int]:
    """Each partition stream's last sequence on one server (0: no stream)."""
    with client.pipeline(transaction=False) as pipe:
        for partition in range(env.settings.event_partitions):
            pipe.xinfo_stream(stream_key(env.redis_key_prefix, partition))
        replies = pipe.execute(raise_on_error=False)
    return [
        0 if isinstance(reply, Exception) else sequence_of(_text(reply["last-generated-id"]))
        for reply in replies
    ]


def _pending(client: redis.Redis, env: BenchEnvironment) -> int:
    """Entries delivered to a saga group and not acknowledged, on every stream."""
    with client.pipeline(transaction=False) as pipe:
        for partition in range(env.settings.event_partitions):
            for group in SAGA_GROUPS:
                pipe.xpending(stream_key(env.redis_key_prefix, partition), group)
        replies = pipe.execute(raise_on_error=False)
    return sum(int(reply["pending"]) for reply in replies if isinstance(reply, dict))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Chaos:
    def __init__(
        self,
        env: BenchEnvironment,
        servers: FailoverRedis,
        connection: asyncpg.Connection,
        report: RedisLossReport,
    ) -> None:
        self.env = env
        self.servers = servers
        self.connection = connection
        self.report = report

    async def repaired(self, fault: str, before: int, within: float = 60.0) -> None:
        """Until the relay has repaired streams since ``before``: the divergence detected."""
        started = time.monotonic()
        while time.monotonic() - started < within:
            repairs, _ = await repairs_recorded(self.connection)
            if repairs > before:
                detected = time.monotonic() - started
                # The fault's other streams: repaired in the same pass, or the next.
                await asyncio.sleep(0.5)
                repairs, _ = await repairs_recorded(self.connection)
                self.report.faults.append((fault, repairs - before, detected))
                return
            await asyncio.sleep(0.05)
        raise ChaosFailure(f"{fault}: no stream repaired within {within:.0f} s")

    async def relayed(self, at_least: int, within: float = 30.0) -> None:
        """Until the relay has appended ``at_least`` more events than now."""
        start = await self._relayed()
        deadline = time.monotonic() + within
        while (relayed := await self._relayed() - start) < at_least:
            if time.monotonic() > deadline:
                raise ChaosFailure(
                    f"the relay appended {relayed} events in {within:.0f} s while orders flowed"
                )
            await asyncio.sleep(0.05)

    async def _relayed(self) -> int:
        return int(
            await self.connection.fetchval(
                "SELECT coalesce(sum(last_sequence), 0) FROM event_partitions"
            )
        )

    async def flush(self, index: int) -> None:
        await self.relayed(10)
        before, _ = await repairs_recorded(self.connection)
        with self.servers.primary.client() as client:
            client.flushall()
        await self.repaired(f"FLUSHALL #{index}", before)

    async def kill_with_pending(self, down_seconds: float) -> None:
        """SIGKILL the primary at a moment entries are pending, restart it empty."""
        await self.relayed(10)
        deadline = time.monotonic() + 20
        with self.servers.primary.client() as client:
            while (pending := _pending(client, self.env)) == 0:
                if time.monotonic() > deadline:
                    raise ChaosFailure("no entry was ever pending: the workers are not reading")
                await asyncio.sleep(0.005)
        before, _ = await repairs_recorded(self.connection)
        self.servers.primary.kill()
        self.report.pending_at_kill = pending
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(self.servers.primary.start)
        await self.repaired("SIGKILL, restarted empty", before)

    async def fail_over(self, lag_entries: int) -> None:
        """Cut a synced replica's link, let the primary take more writes, kill
        it, promote the replica: it lacks the newest entries."""
        replica = await asyncio.to_thread(self.servers.start_replica)
        replica.pause_replication()
        with self.servers.primary.client() as primary, replica.client() as lagging:
            copied = _tails(lagging, self.env)
            deadline = time.monotonic() + 30
            while sum(_tails(primary, self.env)) - sum(copied) < lag_entries:
                if time.monotonic() > deadline:
                    raise ChaosFailure("the primary took no writes while replication was cut")
                await asyncio.sleep(0.05)
            before, _ = await repairs_recorded(self.connection)
            ahead = _tails(primary, self.env)
            self.servers.fail_over(replica)
            promoted = _tails(lagging, self.env)
        if promoted != copied:
            raise ChaosFailure(f"the replica got writes after its link was cut: {promoted}")
        self.report.replica_behind = sum(ahead) - sum(promoted)
        await self.repaired("failover to a lagging replica", before)


async def run_redis_loss(
    env: BenchEnvironment,
    servers: FailoverRedis,
    *,
    quick: bool,
    logs: Path,
    settle_seconds: float = 180.0,
    seed: int | None = None,
) -> RedisLossReport:
    """``env`` must talk to Redis through ``servers.url``."""
    if env.redis_url != servers.url:
        raise ValueError("run_redis_loss needs an environment on the failover endpoint")
    rng = random.Random(seed)
    clients = 4 if quick else 12
    report = RedisLossReport(clients=clients)
    connection = await asyncpg.connect(env.database_url)
    environment = env.environment() | CHAOS_FUNCTION_ENVIRONMENT
    processes = [
        FunctionProcess(
            name,
            environment,
            timeout_seconds=INVOCATION_SECONDS,
            log=logs / f"{name}-redis-loss-{copy}.log",
        )
        for name in SAGA_FUNCTIONS
        for copy in (1, 2)
    ]
    done = asyncio.Event()
    try:
        # Stock for most orders: some are rejected once it runs out.
        products = await seed_products(
            connection, 20, on_hand=25 if quick else 200, label="redis-loss"
        )
        await asyncio.gather(*(asyncio.to_thread(process.start) for process in processes))
        started = time.monotonic()
        placing = [
            asyncio.create_task(_client(env, products, done, report, rng)) for _ in range(clients)
        ]
        try:
            chaos = _Chaos(env, servers, connection, report)
            for index in range(1, (2 if quick else 6) + 1):
                await chaos.flush(index)
            await chaos.kill_with_pending(down_seconds=0.5 if quick else 3.0)
            await chaos.fail_over(lag_entries=10 if quick else 100)
            if not quick:  # once more, on the promoted replica: the new primary
                await chaos.flush(7)
            await chaos.relayed(10)  # orders flow through the new primary too
        finally:
            done.set()
            await asyncio.gather(*placing)
        report.seconds_flowing = time.monotonic() - started
        settled = time.monotonic()
        await settle(connection, settle_seconds)
        report.seconds_settling = time.monotonic() - settled
        books = KillReport(orders=report.orders)
        await check_books(env, connection, books, streams_complete=False)
        report.statuses, report.events = books.statuses, books.events
        report.dead_letters = books.dead_letters
        report.repairs, report.republished = await repairs_recorded(connection)
        # One more invocation of each, so the last one's metrics are in the logs.
        await asyncio.sleep(INVOCATION_SECONDS + 1)
    finally:
        done.set()
        for process in processes:
            process.stop()
        await connection.close()
    report.metrics = _metrics(process.log for process in processes if process.log)
    if report.repairs < len(report.faults):
        raise ChaosFailure(f"{len(report.faults)} faults, {report.repairs} repairs recorded")
    if not report.metrics["EventsDuplicate"]:
        raise ChaosFailure("events were republished, yet no group counted a duplicate")
    return report


def _metrics(logs: Iterable[Path]) -> Counter[str]:
    """The EMF metrics the processes printed, summed over every invocation."""
    wanted = ("EventsDuplicate", "EventsHandled", "StreamRepairs", "EventsRepublished")
    totals: Counter[str] = Counter()
    for path in logs:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if '"_aws"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            for name in wanted:
                value = record.get(name)
                # EMF: a number, or a list of the values added in the invocation.
                for number in value if isinstance(value, list) else [value]:
                    if isinstance(number, int | float):
                        totals[name] += int(number)
    return totals
