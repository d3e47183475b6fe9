"""The key store: wrapped keys, the erasure ledger and the signed audit head.

It lives in its own database (a second SQLite file, or its own PostgreSQL schema) so a
backup of the data never contains keys: restoring old data can neither revive a destroyed
key nor roll back the erasure ledger (DESIGN.md).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Integer, LargeBinary, MetaData, String, Uuid, delete, func, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voicedesk.domain.errors import ConfigError
from voicedesk.store.models import NAMING_CONVENTION, UTCDateTime
from voicedesk.store.session import Database


class KeyBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class KekCheck(KeyBase):
    """A known plaintext under the master key: tells a wrong key from a right one."""

    __tablename__ = "kek_check"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class TenantKey(KeyBase):
    __tablename__ = "tenant_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class DataKey(KeyBase):
    """A subject's wrapped DEK. Deleting the row is the crypto-shredding step."""

    __tablename__ = "data_keys"

    key_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ErasureLedgerEntry(KeyBase):
    """Pseudonymous record of an erasure, replayed after any restore of data."""

    __tablename__ = "erasure_ledger"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    key_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    erased_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditHead(KeyBase):
    """The latest audit entry's sequence and hash, signed; detects a truncated tail."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(64))


class KeyStore:
    """Async access to the key database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create_schema(self) -> None:
        try:
            await self.db.ensure_schema()
            async with self.db.engine.begin() as conn:
                await conn.run_sync(KeyBase.metadata.create_all)
        except (OperationalError, DBAPIError, OSError) as exc:
            raise ConfigError(f"key store unreachable: {type(exc.__cause__ or exc).__name__}") from None

    async def get_kek_check(self) -> bytes | None:
        async with self.db.sessions() as s:
            row = await s.get(KekCheck, 1)
            return row.blob if row else None

    async def put_kek_check(self, blob: bytes, now: dt.datetime) -> None:
        async with self.db.transaction() as s:
            s.add(KekCheck(id=1, blob=blob, created_at=now))

    async def get_tenant_key(self, tenant_id: uuid.UUID) -> bytes | None:
        async with self.db.sessions() as s:
            row = await s.get(TenantKey, tenant_id)
            return row.wrapped if row else None

    async def put_tenant_key(self, tenant_id: uuid.UUID, wrapped: bytes, now: dt.datetime) -> None:
        async with self.db.transaction() as s:
            s.add(TenantKey(tenant_id=tenant_id, wrapped=wrapped, created_at=now))

    async def get_data_key(self, key_id: uuid.UUID) -> tuple[uuid.UUID, bytes] | None:
        async with self.db.sessions() as s:
            row = await s.get(DataKey, key_id)
            return (row.tenant_id, row.wrapped) if row else None

    async def put_data_key(self, key_id: uuid.UUID, tenant_id: uuid.UUID, wrapped: bytes, now: dt.datetime) -> None:
        async with self.db.transaction() as s:
            s.add(DataKey(key_id=key_id, tenant_id=tenant_id, wrapped=wrapped, created_at=now))

    async def destroy_data_key(
        self, *, tenant_id: uuid.UUID, subject_id: uuid.UUID, key_id: uuid.UUID, now: dt.datetime,
        request_id: str | None = None,
    ) -> None:
        """Delete the DEK and append to the erasure ledger, in one transaction."""
        async with self.db.transaction() as s:
            await s.execute(delete(DataKey).where(DataKey.key_id == key_id, DataKey.tenant_id == tenant_id))
            s.add(ErasureLedgerEntry(tenant_id=tenant_id, subject_id=subject_id, key_id=key_id, erased_at=now,
                                     request_id=request_id))
        if self.db.is_sqlite:
            async with self.db.engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    async def ledger(self, tenant_id: uuid.UUID | None = None) -> list[ErasureLedgerEntry]:
        async with self.db.sessions() as s:
            q = select(ErasureLedgerEntry).order_by(ErasureLedgerEntry.seq)
            if tenant_id is not None:
                q = q.where(ErasureLedgerEntry.tenant_id == tenant_id)
            return list((await s.scalars(q)).all())

    async def get_audit_head(self, session: AsyncSession | None = None) -> AuditHead | None:
        async with self.db.sessions() as s:
            return await s.get(AuditHead, 1)

    async def put_audit_head(self, seq: int, hash_: str, signature: str) -> None:
        async with self.db.transaction() as s:
            row = await s.get(AuditHead, 1)
            if row is None:
                s.add(AuditHead(id=1, seq=seq, hash=hash_, signature=signature))
            else:
                row.seq, row.hash, row.signature = seq, hash_, signature

    async def count_data_keys(self, tenant_id: uuid.UUID) -> int:
        async with self.db.sessions() as s:
            n = await s.scalar(select(func.count()).select_from(DataKey).where(DataKey.tenant_id == tenant_id))
            return int(n or 0)
