"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from voicedesk.store import migrate
from voicedesk.store.models import Base
from voicedesk.store.vault import Vault


async def test_models_and_migrations_agree(vault: Vault) -> None:
    def diff(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))

    async with vault.db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    assert await migrate.is_current(vault.db)
