"""PostgreSQL through SQLAlchemy's asyncio engine and asyncpg."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Protocol, Self
from uuid import uuid4

import asyncpg
from sqlalchemy import MetaData
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from storefront.adapters.endpoints import database_url
from storefront.settings import Settings

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class DatabaseUnavailable(Exception):
    """PostgreSQL cannot be reached; the request may succeed if retried later."""


def asyncpg_url(url: str) -> str:
    """The URL with the asyncpg driver: plain ``postgresql://`` URLs are accepted too."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url.removeprefix(plain)
    return url


_NO_STATEMENT_CACHE = {
    "statement_cache_size": 0,
    "prepared_statement_cache_size": 0,
    "prepared_statement_name_func": lambda: f"__asyncpg_{uuid4()}__",
}


def create_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    """One engine per container and endpoint (``url``, else the writer's),
    sized for one request at a time.

    RDS Proxy and PgBouncer hand a client's statements to different server
    connections, where asyncpg's cached prepared statements would collide, so
    by default the statement caches are off and every prepared statement gets
    a unique name (SQLAlchemy's asyncpg dialect notes on PgBouncer). That
    costs a Parse/Describe round trip before every statement.

    ``database_statement_cache`` keeps them instead: for the relay and the
    workers, which run the same few statements thousands of times on a few
    long-lived connections. RDS Proxy pins a connection that holds prepared
    statements to its server connection, so nothing collides; the price is
    that the proxy does not multiplex those few connections (the relay's
    LISTEN pins its connection anyway). The API functions, many containers
    with short requests, keep the default and are multiplexed. After a
    migration changes a table, a kept statement on it fails once ("cached
    statement plan is invalid") and SQLAlchemy drops its cache: the relay
    retries the batch on its next pass, a worker the event (one delivery of
    ``worker_max_deliveries``).
    """
    return create_async_engine(
        asyncpg_url(url or database_url(settings)),
        pool_size=1,
        max_overflow=2,
        pool_timeout=settings.database_connect_timeout,
        # A frozen container's connections may have been closed by the proxy.
        pool_pre_ping=True,
        pool_recycle=600,
        connect_args={
            "timeout": settings.database_connect_timeout,
            **({} if settings.database_statement_cache else _NO_STATEMENT_CACHE),
            "server_settings": {
                "statement_timeout": str(settings.database_statement_timeout_ms),
                "application_name": settings.service_name,
            },
        },
    )


def is_unavailable(error: BaseException) -> bool:
    """Whether an error means "PostgreSQL is not reachable" rather than a bug."""
    if isinstance(error, DatabaseUnavailable | OSError | asyncio.TimeoutError | PoolTimeoutError):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, OperationalError | InterfaceError):
        return True
    cause = getattr(error, "orig", None) or error.__cause__
    return isinstance(
        cause,
        asyncpg.exceptions.CannotConnectNowError
        | asyncpg.exceptions.ConnectionDoesNotExistError
        | asyncpg.exceptions.TooManyConnectionsError
        | asyncpg.exceptions.AdminShutdownError,
    )


class UnitOfWork:
    """One database transaction: commit explicitly, roll back on exit otherwise.

    ``async with UnitOfWork(engine) as uow: ...; await uow.commit()``

    Given an open connection instead of the engine, the transaction runs on
    that connection and leaves it open: a caller running many short
    transactions back to back (a worker's batch of events) checks out and
    pings one connection for all of them.
    """

    def __init__(self, database: AsyncEngine | AsyncConnection) -> None:
        self._database = database
        self._connection: AsyncConnection | None = None

    @property
    def connection(self) -> AsyncConnection:
        if self._connection is None:
            raise RuntimeError("UnitOfWork used outside 'async with'")
        return self._connection

    async def __aenter__(self) -> Self:
        database = self._database
        connection: AsyncConnection | None = None
        try:
            if isinstance(database, AsyncConnection):
                connection = database
            else:
                connection = await database.connect()
            await connection.begin()
        except Exception as error:
            if connection is not None and connection is not database:
                await connection.close()
            if is_unavailable(error):
                raise DatabaseUnavailable(str(error)) from error
            raise
        self._connection = connection
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if connection.in_transaction():
                await connection.rollback()
        finally:
            if connection is not self._database:
                await connection.close()

    async def commit(self) -> None:
        await self.connection.commit()


class TransactionScope(Protocol):
    """What every unit of work a use case takes can do: be entered, commit, and
    roll back on exit without a commit. Contexts' units of work add their
    repositories (storefront.orders.unit_of_work, ...)."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


class RepositoryUnitOfWork:
    """A context's unit of work: its repositories on one transaction, its own
    (``async with``, then :meth:`commit`) or one already open (:meth:`on`: a
    worker's run, which the caller commits). Subclasses build the
    repositories in :meth:`_attach`."""

    def __init__(self, database: AsyncEngine | AsyncConnection, settings: Settings) -> None:
        self._transaction = UnitOfWork(database)
        self.settings = settings

    @classmethod
    def on(cls, connection: AsyncConnection, settings: Settings) -> Self:
        uow = cls(connection, settings)
        uow._attach(connection)
        return uow

    def _attach(self, connection: AsyncConnection) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self._transaction.__aenter__()
        self._attach(self._transaction.connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._transaction.__aexit__(exc_type, exc, tb)

    async def commit(self) -> None:
        await self._transaction.commit()
