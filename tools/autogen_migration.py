"""Developer tool: autogenerate an Alembic revision from the models against an empty SQLite DB.

    .venv/bin/python tools/autogen_migration.py "add foo" 0002
"""

from __future__ import annotations

import asyncio
import sys
import tempfile

from alembic import command
from sqlalchemy.engine import Connection

from voicedesk.store import migrate
from voicedesk.store.session import Database


async def main(message: str, rev_id: str) -> None:
    db = Database.connect(f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/autogen.db")
    await migrate.upgrade(db)

    def run(conn: Connection) -> None:
        cfg = migrate.alembic_config()
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)
    await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
