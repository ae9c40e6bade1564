"""PostgreSQL and Redis servers of the chaos run's own, on free ports, to kill.

Fault injection stops and kills servers, so it never uses the shared ones
(5432/6379, or whatever ``TEST_*`` names): it starts its own from the
PostgreSQL binaries under /usr/lib/postgresql/*/bin (else pgserver's) and
the redis-server :mod:`storefront_dev.embedded` finds, and only ever signals
processes it started itself.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from storefront_dev.embedded import EmbeddedRedis, free_port, start_redis

__all__ = ["ChaosPostgres", "ChaosRedis"]


def _postgres_bin() -> Path:
    system = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if system:
        return system[-1].parent
    import pgserver  # the wheel's own build, for machines without a system PostgreSQL

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


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
    """A redis-server with an append-only file, killed and restarted on one port.

    ``appendfsync always``: the streams are the event log between relay and
    workers, so a restarted Redis must come back with every entry it
    acknowledged (ElastiCache keeps them through replication; here, the AOF).
    """

    data_dir: Path
    port: int = field(default_factory=free_port)
    server: EmbeddedRedis | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server = start_redis(
            None,
            self.port,
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        )

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
