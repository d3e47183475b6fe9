"""Engines and session factories. The outer ring opens sessions and commits; nothing here does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from voicedesk.domain.errors import ConfigError


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    # WAL for concurrent readers; secure_delete so erased rows do not linger in free pages.
    # Page cache 64 MB (default 2 MB), reads through a memory map of up to 1 GB (the OS's
    # page cache, shared by all connections) and temporary b-trees in memory: at 1 M calls
    # the indexes far exceed 2 MB, and the retention sweep's set-based statements ran
    # 33,000 -> 44,000 records/s with these (bench/FINDINGS.md, 5.).
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "secure_delete=ON", "busy_timeout=10000",
                   "synchronous=NORMAL", "cache_size=-65536", "mmap_size=1073741824", "temp_store=MEMORY"):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


def make_engine(url: str, *, schema: str | None = None, pool_size: int = 10) -> AsyncEngine:
    """An async engine; for PostgreSQL ``schema`` becomes the connection's search_path."""
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 10}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if schema:
        kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
    return create_async_engine(url, pool_size=pool_size, max_overflow=20, **kwargs)


@dataclass
class Database:
    """An engine plus its session factory."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    schema: str | None = None

    @classmethod
    def connect(cls, url: str, *, schema: str | None = None) -> Database:
        engine = make_engine(url, schema=schema)
        return cls(engine, async_sessionmaker(engine, expire_on_commit=False), schema)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on success, rolls back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ensure_schema(self) -> None:
        if self.schema and not self.is_sqlite:
            async with self.engine.begin() as conn:
                await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))

    async def ping(self) -> None:
        """Raise ``ConfigError`` with a readable reason when the database cannot be reached."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OperationalError, DBAPIError, OSError) as exc:
            raise ConfigError(f"database unreachable ({self.engine.url.render_as_string(hide_password=True)}): "
                              f"{type(exc.__cause__ or exc).__name__}") from None

    async def dispose(self) -> None:
        await self.engine.dispose()
