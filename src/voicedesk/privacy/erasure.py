"""Erasure on request (Art. 17, R-8.3): everything of one person, then their key.

What goes: the subject row with its blind indexes (phone, e-mail), the contact, every call
of the subject with its turns, recordings (rows and encrypted blobs), consent records and
carrier dedupe keys, appointments with their slot locks and history, messages, queued
outbound messages (SMS, e-mail, webhooks), released legal holds. The subject's data-subject
requests stay as proof that a request was answered, but lose their encrypted details and
their link to the person. Finally the subject's data key is destroyed (``KeyRing.shred``),
which writes a pseudonymous entry to the erasure ledger in the separate key store; that
ledger is replayed after any restore of an older data backup (``privacy.restore``).

Order: the key is shredded *before* the rows are deleted. If the process dies between the
two, the rows left behind are unreadable, and the next ledger replay removes them; the other
order could leave a readable person behind with no ledger entry to replay.

An active legal hold on the subject or on one of their calls refuses the request with a
reason (``LegalHoldError``); nothing is deleted then.

Deleted bytes must not linger. SQLite runs with ``secure_delete=ON`` (freed cells and pages
are zeroed) and the WAL is checkpointed and truncated after an erasure. PostgreSQL keeps
dead row versions until ``VACUUM`` (autovacuum) reuses the pages: the rows are ciphertext
under a destroyed key, so they are unreadable meanwhile, but operators who also want the
ciphertext gone from disk at once should run ``VACUUM`` on the data tables after an erasure
(see docs/privacy-requests.md).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import Delete, Update, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from voicedesk.domain import dsar as rules
from voicedesk.domain.errors import LegalHoldError
from voicedesk.privacy.dsar import access_request, move, require
from voicedesk.store.models import (
    Appointment,
    AppointmentEvent,
    Call,
    Consent,
    Contact,
    DsarRequest,
    LegalHold,
    Message,
    OutboxMessage,
    Recording,
    SlotLock,
    Subject,
    Turn,
    WebhookEvent,
)
from voicedesk.store.session import Database
from voicedesk.store.vault import Vault

LEGAL_HOLD_REASON = "a legal hold applies: the data must be kept by law (Art. 17(3)(b) and (e) GDPR)"


@dataclass
class Purged:
    """Rows deleted per table, and the blobs to delete once the transaction has committed."""

    counts: dict[str, int] = field(default_factory=dict)
    blob_keys: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def add(self, other: Purged) -> None:
        for k, v in other.counts.items():
            self.counts[k] = self.counts.get(k, 0) + v
        self.blob_keys.extend(other.blob_keys)


@dataclass(frozen=True)
class ErasureReport:
    request_id: uuid.UUID
    counts: dict[str, int]
    blobs_deleted: int


def _calls_of(tenant_id: uuid.UUID, subject_id: uuid.UUID) -> Select[uuid.UUID]:
    return select(Call.id).where(Call.tenant_id == tenant_id, Call.subject_id == subject_id)


async def active_holds(session: AsyncSession, tenant_id: uuid.UUID, subject_id: uuid.UUID) -> int:
    """Unreleased legal holds on the subject or on one of their calls."""
    q = select(func.count()).select_from(LegalHold).where(
        LegalHold.tenant_id == tenant_id, LegalHold.released_at.is_(None),
        or_(LegalHold.subject_id == subject_id, LegalHold.call_id.in_(_calls_of(tenant_id, subject_id))))
    return int(await session.scalar(q) or 0)


async def purge_subject(session: AsyncSession, tenant_id: uuid.UUID, subject_id: uuid.UUID) -> Purged:
    """Delete every row of the subject in the data database (no commit, no blobs, no key).

    Used by erasure and by the ledger replay after a restore; safe to run twice.
    """
    out = Purged()
    calls = _calls_of(tenant_id, subject_id)
    appointments = select(Appointment.id).where(Appointment.tenant_id == tenant_id,
                                                Appointment.subject_id == subject_id)
    out.blob_keys = list((await session.scalars(
        select(Recording.blob_key).where(Recording.tenant_id == tenant_id, Recording.call_id.in_(calls)))).all())
    provider_ids = [p for p in (await session.scalars(
        select(Call.provider_call_id).where(Call.id.in_(calls)))).all() if p]

    async def run(name: str, stmt: Delete | Update) -> None:
        result = await session.execute(stmt.execution_options(synchronize_session=False))
        out.counts[name] = out.counts.get(name, 0) + int(getattr(result, "rowcount", 0) or 0)

    await run("slot_locks", delete(SlotLock).where(SlotLock.tenant_id == tenant_id,
                                                   SlotLock.appointment_id.in_(appointments)))
    await run("appointment_events", delete(AppointmentEvent).where(AppointmentEvent.tenant_id == tenant_id,
                                                                   AppointmentEvent.appointment_id.in_(appointments)))
    await run("appointments", delete(Appointment).where(Appointment.tenant_id == tenant_id,
                                                        Appointment.subject_id == subject_id))
    await run("messages", delete(Message).where(Message.tenant_id == tenant_id, Message.subject_id == subject_id))
    await run("outbox", delete(OutboxMessage).where(OutboxMessage.tenant_id == tenant_id,
                                                    OutboxMessage.subject_id == subject_id))
    await run("consents", delete(Consent).where(Consent.tenant_id == tenant_id, or_(
        Consent.subject_id == subject_id, Consent.call_id.in_(calls))))
    await run("turns", delete(Turn).where(Turn.tenant_id == tenant_id, Turn.call_id.in_(calls)))
    await run("recordings", delete(Recording).where(Recording.tenant_id == tenant_id, Recording.call_id.in_(calls)))
    await run("legal_holds", delete(LegalHold).where(
        LegalHold.tenant_id == tenant_id, LegalHold.released_at.is_not(None),
        or_(LegalHold.subject_id == subject_id, LegalHold.call_id.in_(calls))))
    for sid in provider_ids:
        await run("webhook_events", delete(WebhookEvent).where(WebhookEvent.key.like(f"twilio-status|{sid}|%")))
    await run("calls", delete(Call).where(Call.tenant_id == tenant_id, Call.subject_id == subject_id))
    await run("contacts", delete(Contact).where(Contact.tenant_id == tenant_id, Contact.subject_id == subject_id))
    await run("dsar_requests_anonymised", update(DsarRequest).where(
        DsarRequest.tenant_id == tenant_id, DsarRequest.subject_id == subject_id).values(
        subject_id=None, details_enc=None))
    await run("subjects", delete(Subject).where(Subject.tenant_id == tenant_id, Subject.id == subject_id))
    out.counts = {k: v for k, v in out.counts.items() if v}
    return out


async def compact(db: Database, *, vacuum: bool = False) -> None:
    """SQLite: move the WAL into the file and truncate it, so deleted pages leave no copy behind.

    ``secure_delete`` already zeroes freed space; ``vacuum=True`` also rebuilds the file
    (slow on a large database). PostgreSQL: nothing here — autovacuum reclaims dead rows.
    """
    if not db.is_sqlite:
        return
    async with db.engine.connect() as conn:
        await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        if vacuum:
            await conn.exec_driver_sql("VACUUM")
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


async def delete_blobs(vault: Vault, keys: list[str]) -> int:
    deleted = 0
    for key in keys:
        if await vault.blobs.delete(key):
            deleted += 1
    return deleted


async def do_erase(
    vault: Vault, request_id: uuid.UUID | str, *, actor: str, tenant_id: uuid.UUID | None = None,
    vacuum: bool = False,
) -> ErasureReport:
    """Carry out a verified erasure request; ``LegalHoldError`` (request refused) if a hold applies."""
    now = vault.clock.now()
    async with vault.db.transaction() as session:
        loaded = await access_request(session, request_id, tenant_id=tenant_id)
        require(loaded, ["erasure"])
        subject = loaded.require_subject()
        holds = await active_holds(session, subject.tenant_id, subject.id)
        if holds:
            move(loaded, rules.DsarState.REFUSED, now, reason=LEGAL_HOLD_REASON)
        ids = (loaded.tenant.id, loaded.request.id, subject.id, subject.key_id)
    t_id, r_id, s_id, key_id = ids
    if holds:
        await vault.audit.record(actor=actor, action="dsar.erase_refused", tenant_id=t_id,
                                 object_type="dsar_request", object_id=r_id, reason="legal_hold",
                                 details={"holds": holds})
        raise LegalHoldError(LEGAL_HOLD_REASON, holds=holds)

    await vault.keys.shred(t_id, s_id, key_id, now, request_id=str(r_id))
    async with vault.db.transaction() as session:
        loaded = await access_request(session, r_id)
        move(loaded, rules.DsarState.COMPLETED, now)
        loaded.request.details_enc = None
        loaded.request.subject_id = None
        await session.flush()
        purged = await purge_subject(session, t_id, s_id)
    blobs = await delete_blobs(vault, purged.blob_keys)
    await compact(vault.db, vacuum=vacuum)
    await vault.audit.record(actor=actor, action="dsar.erase", tenant_id=t_id, object_type="dsar_request",
                             object_id=r_id, details={"rows": purged.counts, "blobs": blobs})
    return ErasureReport(r_id, purged.counts, blobs)
