"""Call records: open an inbound call, apply carrier status callbacks, close calls.

Every call gets a subject (a withheld number gets a subject of its own), so all personal
data of the call is encrypted under that subject's data key and erased with it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError as DbIntegrityError

from voicedesk.domain.errors import NotFoundError
from voicedesk.domain.profile import Language, TenantProfile, normalize_e164
from voicedesk.privacy.texts import current_text
from voicedesk.store.models import Call, Subject, UsedToken, WebhookEvent
from voicedesk.store.repos import calls as call_repo
from voicedesk.store.repos import subjects as subject_repo
from voicedesk.store.repos.tenants import get_tenant, get_tenant_by_number, profile_of
from voicedesk.store.vault import Vault

TERMINAL_CARRIER_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
SYSTEM = "system:telephony"


@dataclass(frozen=True)
class OpenedCall:
    call_id: uuid.UUID
    tenant_id: uuid.UUID
    language: Language
    twiml: str | None  # the answer already given (a carrier retry gets the same)
    created: bool


@dataclass(frozen=True)
class CallContext:
    """What the runtime needs to serve a call; ``known_name`` is None when restricted (R-8.4)."""

    call_id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_slug: str
    subject_id: uuid.UUID
    key_id: uuid.UUID
    profile: TenantProfile
    language: Language
    caller_number: str | None
    called_number: str | None
    known_name: str | None
    announcement_version: str
    announcement: str
    consent_question: str
    privacy_notice: str


def caller_number(raw: str | None) -> str | None:
    """E.164 of a caller id, or None for withheld/anonymous/client identities."""
    if not raw or not raw.startswith("+"):
        return None
    try:
        return normalize_e164(raw)
    except ValueError:
        return None


async def do_open_inbound_call(
    vault: Vault, *, call_sid: str, from_: str | None, to: str, caller_name: str | None, instance_id: str,
    answer: Callable[[uuid.UUID, uuid.UUID], str] | None = None,
) -> OpenedCall:
    """Create the call record for an incoming-call webhook; idempotent per ``CallSid``.

    ``answer(call_id, tenant_id)`` builds the TwiML reply, stored in the same transaction so a
    carrier retry gets exactly the same answer (one transaction on the webhook's hot path).
    """
    now = vault.clock.now()
    try:
        called = normalize_e164(to)
    except ValueError:
        raise NotFoundError("called number is not routed to any tenant") from None
    async with vault.db.transaction() as s:
        existing = await call_repo.get_call_by_provider_id(s, call_sid)
        if existing is not None:
            return OpenedCall(existing.id, existing.tenant_id, existing.language,  # type: ignore[arg-type]
                              existing.twiml_answer, created=False)
        routed = await get_tenant_by_number(s, called)
        if routed is None:
            raise NotFoundError("called number is not routed to any tenant")
        tenant, language = routed
        phone = caller_number(from_)
        subject = await subject_repo.find_subject_by_phone(s, vault.keys, tenant.id, phone) if phone else None
        if subject is None:
            subject = await subject_repo.add_subject(s, vault.keys, tenant.id, now=now, phone=phone)
        subject.last_contact_at = now
        call = Call(id=uuid.uuid4(), tenant_id=tenant.id, subject_id=subject.id, provider="twilio",
                    provider_call_id=call_sid, direction="inbound", to_number=called, language=language,
                    status="ringing", started_at=now, instance_id=instance_id)
        call.from_enc = await vault.keys.encrypt(tenant.id, subject.key_id, from_ or "", table="calls",
                                                 row_id=call.id, column="from")
        if caller_name:
            call.caller_name_enc = await vault.keys.encrypt(tenant.id, subject.key_id, caller_name, table="calls",
                                                            row_id=call.id, column="caller_name")
        if answer is not None:
            call.twiml_answer = answer(call.id, tenant.id)
        s.add(call)
    await vault.audit.record(actor=SYSTEM, action="call.open", tenant_id=tenant.id, object_type="call",
                             object_id=call.id)
    return OpenedCall(call.id, tenant.id, language, call.twiml_answer, created=True)  # type: ignore[arg-type]


async def do_claim_stream(
    vault: Vault, token_id: str, expires_at: dt.datetime, *, answered: tuple[uuid.UUID, uuid.UUID] | None = None,
) -> bool:
    """Single use of a media-stream token (False when it was used before); with ``answered =
    (tenant_id, call_id)`` the call is marked answered in the same transaction."""
    try:
        async with vault.db.transaction() as s:
            s.add(UsedToken(token_id=token_id, expires_at=expires_at))
            await s.flush()
            if answered is not None:
                call = await call_repo.get_call(s, *answered)
                if call.answered_at is None:
                    call.answered_at = vault.clock.now()
                if call.status in ("ringing", "queued"):
                    call.status = "in-progress"
    except DbIntegrityError:
        return False
    return True


async def do_forget_expired_tokens(vault: Vault) -> None:
    async with vault.db.transaction() as s:
        await s.execute(delete(UsedToken).where(UsedToken.expires_at < vault.clock.now()))


async def load_call_context(vault: Vault, tenant_id: uuid.UUID, call_id: uuid.UUID) -> CallContext:
    """Everything needed to serve the call; reading the caller's data is audited (R-10.2)."""
    async with vault.db.sessions() as s:
        call = await call_repo.get_call(s, tenant_id, call_id)
        tenant = await get_tenant(s, tenant_id)
        profile = profile_of(tenant)
        language: Language = "en" if call.language == "en" else "de"
        subject = await s.get(Subject, call.subject_id) if call.subject_id else None
        if subject is None:
            raise NotFoundError("call has no subject")
        texts = {kind: await current_text(s, tenant_id, kind, language)
                 for kind in ("announcement", "consent_question", "privacy_notice")}
        raw_from = await vault.keys.decrypt(tenant_id, call.from_enc, table="calls", row_id=call.id, column="from")
        known_name = None
        if not subject.restricted and not subject.objected:  # no personalisation
            contact = await subject_repo.get_contact(s, tenant_id, subject.id)
            if contact is not None:
                known_name = (await subject_repo.read_contact(vault.keys, contact)).display_name
    await vault.audit.record(actor=SYSTEM, action="call.context_read", tenant_id=tenant_id, object_type="call",
                             object_id=call_id, details={"restricted": subject.restricted})
    version = (f"{texts['announcement'].id}:v{texts['announcement'].version}"
               f"+q:v{texts['consent_question'].version}")
    return CallContext(
        call_id=call.id, tenant_id=tenant_id, tenant_slug=tenant.slug, subject_id=subject.id, key_id=subject.key_id,
        profile=profile, language=language, caller_number=caller_number(raw_from), called_number=call.to_number,
        known_name=known_name, announcement_version=version, announcement=texts["announcement"].text,
        consent_question=texts["consent_question"].text, privacy_notice=texts["privacy_notice"].text,
    )


async def do_finish_call(
    vault: Vault, tenant_id: uuid.UUID, call_id: uuid.UUID, *, outcome: str | None, summary: str | None,
) -> None:
    """The media stream ended: outcome and summary (encrypted); the carrier reports the status."""
    async with vault.db.transaction() as s:
        call = await call_repo.get_call(s, tenant_id, call_id)
        call.outcome = outcome
        if summary and call.subject_id:
            subject = await s.get(Subject, call.subject_id)
            if subject is not None:
                call.summary_enc = await vault.keys.encrypt(tenant_id, subject.key_id, summary, table="calls",
                                                            row_id=call.id, column="summary")
        if call.ended_at is None:
            call.ended_at = vault.clock.now()
            if call.status in ("ringing", "in-progress"):
                call.status = "completed"
            if call.answered_at is not None:
                call.duration_s = int((call.ended_at - call.answered_at).total_seconds())


async def do_apply_status_callback(
    vault: Vault, *, call_sid: str, status: str, duration_s: int | None, from_: str | None, to: str | None,
    instance_id: str,
) -> bool:
    """Apply a status callback once (retries and duplicates are no-ops). Missed calls are recorded too."""
    key = f"twilio-status|{call_sid}|{status}"
    try:
        async with vault.db.transaction() as s:
            s.add(WebhookEvent(key=key, received_at=vault.clock.now()))
    except DbIntegrityError:
        return False
    if status not in TERMINAL_CARRIER_STATUSES:
        return True
    async with vault.db.sessions() as s:
        exists = await call_repo.get_call_by_provider_id(s, call_sid)
    if exists is None and to:
        # A call that never reached our voice webhook (missed, busy, failed): still a record.
        try:
            await do_open_inbound_call(vault, call_sid=call_sid, from_=from_, to=to, caller_name=None,
                                       instance_id=instance_id)
        except NotFoundError:
            return False
    async with vault.db.transaction() as s:
        call = await call_repo.get_call_by_provider_id(s, call_sid)
        if call is None:
            return False
        now = vault.clock.now()
        call.status = status
        call.ended_at = call.ended_at or now
        if duration_s is not None:
            call.duration_s = duration_s
        tenant_id, call_id = call.tenant_id, call.id
    await vault.audit.record(actor=SYSTEM, action="call.status", tenant_id=tenant_id, object_type="call",
                             object_id=call_id, details={"status": status})
    return True
