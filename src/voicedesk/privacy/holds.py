"""Legal holds (R-7.2, R-4.4): a subject or a call whose data must be kept, whatever its period.

A hold on a subject covers the subject's contact data and every call of the subject
(recordings, transcripts, metadata); a hold on a call covers that call and, because
erasing the subject would destroy the call's data key, the call's subject too. The
retention sweep skips held records; erasure on request is refused while a hold applies.

Adding and releasing a hold are audited by id and scope only: the free-text reason stays
in the hold row and never reaches the audit log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voicedesk.domain.errors import ConflictError, InvalidInputError
from voicedesk.store.models import Call, LegalHold, Subject
from voicedesk.store.repos.base import get_owned
from voicedesk.store.vault import Vault

__all__ = [
    "HeldSet",
    "active_holds",
    "do_add_legal_hold",
    "do_release_legal_hold",
    "is_held",
    "list_legal_holds",
]


@dataclass(frozen=True)
class HeldSet:
    """The ids a tenant's active holds protect, expanded across the subject/call link."""

    subjects: frozenset[uuid.UUID]
    calls: frozenset[uuid.UUID]

    def covers_call(self, call_id: uuid.UUID, subject_id: uuid.UUID | None) -> bool:
        return call_id in self.calls or (subject_id is not None and subject_id in self.subjects)

    def covers_subject(self, subject_id: uuid.UUID) -> bool:
        return subject_id in self.subjects


async def active_holds(session: AsyncSession, tenant_id: uuid.UUID) -> HeldSet:
    """Every subject and call of ``tenant_id`` that an unreleased hold protects."""
    rows = (await session.execute(
        select(LegalHold.subject_id, LegalHold.call_id)
        .where(LegalHold.tenant_id == tenant_id, LegalHold.released_at.is_(None))
    )).all()
    subjects = {r.subject_id for r in rows if r.subject_id is not None}
    calls = {r.call_id for r in rows if r.call_id is not None}
    if calls:
        # A held call keeps its subject (the subject's key decrypts the call).
        linked = await session.scalars(select(Call.subject_id).where(
            Call.tenant_id == tenant_id, Call.id.in_(calls), Call.subject_id.is_not(None)))
        subjects.update(s for s in linked if s is not None)
    return HeldSet(frozenset(subjects), frozenset(calls))


async def is_held(
    session: AsyncSession, tenant_id: uuid.UUID, *, subject_id: uuid.UUID | None = None,
    call_id: uuid.UUID | None = None,
) -> bool:
    """Whether an active hold protects the subject or the call (for erasure on request)."""
    held = await active_holds(session, tenant_id)
    if subject_id is not None and held.covers_subject(subject_id):
        return True
    if call_id is not None:
        call_subject = await session.scalar(select(Call.subject_id).where(Call.tenant_id == tenant_id,
                                                                          Call.id == call_id))
        return held.covers_call(call_id, call_subject)
    return False


async def do_add_legal_hold(
    vault: Vault, tenant_id: uuid.UUID, *, reason: str, actor: str, subject_id: uuid.UUID | None = None,
    call_id: uuid.UUID | None = None,
) -> LegalHold:
    """Put a subject or a call on hold; ``NotFoundError`` for another tenant's ids. Audited."""
    if (subject_id is None) == (call_id is None):
        raise InvalidInputError("a legal hold names either a subject or a call", field="subject_id")
    reason = reason.strip()
    if not reason:
        raise InvalidInputError("a legal hold needs a reason (e.g. the statute that requires keeping)",
                                field="reason")
    now = vault.clock.now()
    async with vault.db.transaction() as s:
        if subject_id is not None:
            await get_owned(s, Subject, tenant_id, subject_id)
        else:
            await get_owned(s, Call, tenant_id, call_id)
        hold = LegalHold(id=uuid.uuid4(), tenant_id=tenant_id, subject_id=subject_id, call_id=call_id,
                         reason=reason[:500], created_at=now)
        s.add(hold)
    await vault.audit.record(actor=actor, action="legal_hold.add", tenant_id=tenant_id, object_type="legal_hold",
                             object_id=hold.id, details={"scope": "subject" if subject_id else "call",
                                                         "target_id": str(subject_id or call_id)})
    return hold


async def do_release_legal_hold(vault: Vault, tenant_id: uuid.UUID, hold_id: uuid.UUID, *, actor: str) -> LegalHold:
    """Release a hold; the data then follows its retention period again. Audited."""
    async with vault.db.transaction() as s:
        hold = await get_owned(s, LegalHold, tenant_id, hold_id)
        if hold.released_at is not None:
            raise ConflictError("this legal hold was released already", field="hold_id")
        hold.released_at = vault.clock.now()
    await vault.audit.record(actor=actor, action="legal_hold.release", tenant_id=tenant_id,
                             object_type="legal_hold", object_id=hold.id)
    return hold


async def list_legal_holds(vault: Vault, tenant_id: uuid.UUID, *, active_only: bool = True) -> list[LegalHold]:
    """The tenant's holds, oldest first."""
    async with vault.db.sessions() as s:
        q = select(LegalHold).where(LegalHold.tenant_id == tenant_id).order_by(LegalHold.created_at, LegalHold.id)
        if active_only:
            q = q.where(LegalHold.released_at.is_(None))
        return list((await s.scalars(q)).all())
