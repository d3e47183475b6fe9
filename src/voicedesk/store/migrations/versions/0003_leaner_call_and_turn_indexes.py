"""leaner call and turn indexes: drop the redundant prefix indexes, make two call indexes partial

``ix_calls_tenant_id`` is a prefix of ``ix_calls_tenant_started`` and ``ix_turns_call_id`` of
the unique (call_id, seq) index, which serve the same lookups (and the cascades from
tenants and calls). ``ix_calls_subject_id`` and ``ix_calls_live_instance`` keep only rows
their queries can match (a subject set; an instance set and the call still open), so
anonymising a call removes it from them instead of moving it to a NULL key.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "instance_id IS NOT NULL AND ended_at IS NULL"
_SUBJECT = "subject_id IS NOT NULL"


def upgrade() -> None:
    op.drop_index("ix_calls_tenant_id", table_name="calls")
    op.drop_index("ix_turns_call_id", table_name="turns")
    op.drop_index("ix_calls_subject_id", table_name="calls")
    op.create_index("ix_calls_subject_id", "calls", ["subject_id"], unique=False,
                    sqlite_where=sa.text(_SUBJECT), postgresql_where=sa.text(_SUBJECT))
    op.drop_index("ix_calls_live_instance", table_name="calls")
    op.create_index("ix_calls_live_instance", "calls", ["instance_id", "ended_at"], unique=False,
                    sqlite_where=sa.text(_LIVE), postgresql_where=sa.text(_LIVE))


def downgrade() -> None:
    op.drop_index("ix_calls_live_instance", table_name="calls")
    op.create_index("ix_calls_live_instance", "calls", ["instance_id", "ended_at"], unique=False)
    op.drop_index("ix_calls_subject_id", table_name="calls")
    op.create_index("ix_calls_subject_id", "calls", ["subject_id"], unique=False)
    op.create_index("ix_turns_call_id", "turns", ["call_id"], unique=False)
    op.create_index("ix_calls_tenant_id", "calls", ["tenant_id"], unique=False)
