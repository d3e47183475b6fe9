"""The store facade that services receive: database, key ring, blobs and audit log."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from voicedesk.clock import Clock
from voicedesk.store import migrate
from voicedesk.store.audit import AuditLog
from voicedesk.store.blobs import BlobStore, FileBlobStore
from voicedesk.store.crypto import KeyRing
from voicedesk.store.keystore import KeyStore
from voicedesk.store.session import Database


@dataclass
class Vault:
    db: Database
    keystore: KeyStore
    keys: KeyRing
    blobs: BlobStore
    audit: AuditLog
    clock: Clock

    @classmethod
    async def open(
        cls, *, db_url: str, keys_url: str, kek: bytes, blob_dir: Path, clock: Clock,
        db_schema: str | None = None, keys_schema: str | None = None, run_migrations: bool = True,
        blobs: BlobStore | None = None,
    ) -> Vault:
        """Connect, migrate (unless told not to) and check the master key; ``ConfigError`` on problems."""
        db = Database.connect(db_url, schema=db_schema)
        keys_db = db if keys_url == db_url and keys_schema == db_schema else Database.connect(
            keys_url, schema=keys_schema)
        try:
            await db.ping()
            if run_migrations:
                await migrate.upgrade(db)
            keystore = KeyStore(keys_db)
            await keystore.create_schema()
            keyring = KeyRing(kek, keystore)
            await keyring.check_master_key(clock.now())
        except BaseException:
            await db.dispose()
            if keys_db is not db:
                await keys_db.dispose()
            raise
        audit = AuditLog(db, keystore, keyring.audit_key, clock)
        return cls(db, keystore, keyring, blobs or FileBlobStore(blob_dir), audit, clock)

    async def close(self) -> None:
        await self.db.dispose()
        if self.keystore.db is not self.db:
            await self.keystore.db.dispose()
