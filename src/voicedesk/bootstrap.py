"""Composition root helpers shared by ``create_app`` and the CLI: settings → vault → engines."""

from __future__ import annotations

from voicedesk.clock import Clock, SystemClock
from voicedesk.config import Settings
from voicedesk.store.vault import Vault


async def open_vault(settings: Settings, *, clock: Clock | None = None, run_migrations: bool = True) -> Vault:
    """Open the store for ``settings``: creates the data dir, checks key and database."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    kek = settings.load_master_key()
    return await Vault.open(
        db_url=settings.db_url, keys_url=settings.keys_url, kek=kek, blob_dir=settings.blob_dir,
        clock=clock or SystemClock(), db_schema=settings.database_schema,
        keys_schema=settings.keystore_schema if settings.keys_url.startswith("postgresql") else None,
        run_migrations=run_migrations,
    )
