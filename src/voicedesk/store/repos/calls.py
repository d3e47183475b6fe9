"""Calls, turns, recordings and consent records."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from voicedesk.store.models import Call, Consent, Recording, Turn
from voicedesk.store.repos.base import get_owned

FINAL_STATUSES = frozenset({"completed", "no-answer", "busy", "failed", "canceled", "rejected", "interrupted"})


async def get_call(session: AsyncSession, tenant_id: uuid.UUID, call_id: uuid.UUID | str) -> Call:
    return await get_owned(session, Call, tenant_id, call_id)


async def get_call_by_provider_id(session: AsyncSession, provider_call_id: str) -> Call | None:
    return (await session.scalars(select(Call).where(Call.provider_call_id == provider_call_id))).first()


async def list_turns(session: AsyncSession, tenant_id: uuid.UUID, call_id: uuid.UUID) -> list[Turn]:
    q = select(Turn).where(Turn.tenant_id == tenant_id, Turn.call_id == call_id).order_by(Turn.seq)
    return list((await session.scalars(q)).all())


async def list_recordings(session: AsyncSession, tenant_id: uuid.UUID, call_id: uuid.UUID) -> list[Recording]:
    q = select(Recording).where(Recording.tenant_id == tenant_id, Recording.call_id == call_id)
    return list((await session.scalars(q)).all())


async def list_consents(session: AsyncSession, tenant_id: uuid.UUID, call_id: uuid.UUID) -> list[Consent]:
    q = select(Consent).where(Consent.tenant_id == tenant_id, Consent.call_id == call_id).order_by(Consent.decided_at)
    return list((await session.scalars(q)).all())


async def list_open_calls_of_instance(session: AsyncSession, instance_id: str) -> list[Call]:
    q = select(Call).where(Call.instance_id == instance_id, Call.ended_at.is_(None))
    return list((await session.scalars(q)).all())


async def close_calls_left_open(session: AsyncSession, instance_id: str, now: dt.datetime) -> int:
    """A restarted instance closes only its own calls that it left open by crashing."""
    result = await session.execute(
        update(Call).where(Call.instance_id == instance_id, Call.ended_at.is_(None))
        .values(status="interrupted", ended_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class CallCursor:
    started_at: dt.datetime
    id: uuid.UUID

    def encode(self) -> str:
        return f"{self.started_at.timestamp():.6f}_{self.id.hex}"

    @classmethod
    def decode(cls, raw: str) -> CallCursor:
        ts, _, hex_id = raw.partition("_")
        return cls(dt.datetime.fromtimestamp(float(ts), dt.UTC), uuid.UUID(hex_id))


async def list_calls(
    session: AsyncSession, tenant_id: uuid.UUID, *, status: str | None = None, limit: int = 50,
    after: CallCursor | None = None,
) -> tuple[list[Call], CallCursor | None]:
    """Newest calls first, keyset-paged on (started_at, id) — the dashboard's call list."""
    q = select(Call).where(Call.tenant_id == tenant_id)
    if status is not None:
        q = q.where(Call.status == status)
    if after is not None:
        # The plain upper bound lets the index seek to the cursor; the OR alone makes SQLite walk
        # the index from the newest call down to the cursor on every page (O(depth)).
        q = q.where(Call.started_at <= after.started_at,
                    or_(Call.started_at < after.started_at,
                        and_(Call.started_at == after.started_at, Call.id < after.id)))
    q = q.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(q)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (CallCursor(rows[-1].started_at, rows[-1].id) if more and rows else None)
