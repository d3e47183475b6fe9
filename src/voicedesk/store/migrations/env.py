"""Alembic environment: runs on the connection handed over by ``voicedesk.store.migrate``."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from voicedesk.store.models import Base

config = context.config
target_metadata = Base.metadata


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `voicedesk migrate` (voicedesk.store.migrate)")
run(connection)
