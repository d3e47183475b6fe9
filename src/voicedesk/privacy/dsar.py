"""Data-subject requests as a tracked workflow (R-8.7), and the small rights (R-8.2, R-8.4, R-8.6).

A request is received (staff entry, e-mail, letter, or said during a call — see
``appointments.service.StoreDialogueTools.record_dsar_request``), its identity is verified,
it is carried out and completed, or refused with a reason. Deadlines come from
``domain.dsar`` (Art. 12(3): one month, extendable by two with a reason, working days of the
tenant's holiday region)::

    received ──> identity_verification ──> in_progress ──> completed
        └──────────────┴──────────────────────┴──────────> refused (reason)

Identity is verified by a 6-digit code sent by SMS to the requester's number (kept only as
a keyed hash, valid 10 minutes, 3 wrong attempts in total lock it) or by a member of staff
who confirms it (the actor is audited). Caller ID alone never counts: a request said during
a call stays ``received`` until one of the two happens.

Every ``do_*`` function is one transaction, followed by one audit entry that names ids,
kinds and counts only — never a name, number, address or free text of the person.
Access/portability exports live in ``privacy.export``, erasure in ``privacy.erasure``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, get_args

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from voicedesk.appointments.service import normalize_phone
from voicedesk.domain import dsar as rules
from voicedesk.domain.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ProviderError,
)
from voicedesk.domain.profile import TenantProfile
from voicedesk.integrations.email import Email, EmailSender
from voicedesk.store.models import Consent, DsarRequest, Subject, Tenant
from voicedesk.store.repos import subjects as subject_repo
from voicedesk.store.repos import tenants as tenant_repo
from voicedesk.store.repos.base import get_owned
from voicedesk.store.vault import Vault

log = logging.getLogger(__name__)

Kind = Literal["access", "portability", "rectification", "erasure", "restriction", "objection", "withdrawal"]
Channel = Literal["staff", "email", "letter", "call", "web", "authority"]
KINDS: tuple[Kind, ...] = get_args(Kind)
CHANNELS: tuple[Channel, ...] = get_args(Channel)
WITHDRAWABLE_PURPOSES = ("recording", "transcription", "fine_tuning")

CODE_TTL = dt.timedelta(minutes=10)
MAX_ATTEMPTS = 3
MAX_CODES_SENT = 3
DEFAULT_HOLIDAY_REGION = "DE"
_CODE = re.compile(r"^\d{6}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class CodeSender(Protocol):
    """Sends a verification code by SMS (``integrations.sms.TwilioSms`` is one)."""

    async def send_sms(self, to: str, body: str) -> str:
        """Send ``body`` to ``to``; returns the provider's message id, raises ``ProviderError``."""
        ...


@dataclass(frozen=True)
class DsarView:
    """A request as staff see it (no personal data: the person is named by nothing but ids)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_slug: str
    kind: str
    state: str
    channel: str
    received_at: dt.datetime
    due_on: dt.date
    extended: bool
    verification: str
    verification_method: str | None
    refusal_reason: str | None
    legal_basis: str | None
    completed_at: dt.datetime | None
    overdue: bool
    next_reminder: dt.date | None
    subject_erased: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id), "tenant": self.tenant_slug, "kind": self.kind, "state": self.state,
            "channel": self.channel, "received_at": self.received_at.isoformat(), "due_on": self.due_on.isoformat(),
            "extended": self.extended, "verification": self.verification,
            "verification_method": self.verification_method, "refusal_reason": self.refusal_reason,
            "legal_basis": self.legal_basis,
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "overdue": self.overdue, "next_reminder": self.next_reminder.isoformat() if self.next_reminder else None,
            "subject_erased": self.subject_erased,
        }


@dataclass(frozen=True)
class Loaded:
    """A request with its tenant, profile and (unless erased) subject, inside one session."""

    request: DsarRequest
    tenant: Tenant
    profile: TenantProfile
    subject: Subject | None

    def require_subject(self) -> Subject:
        if self.subject is None:
            raise ConflictError("the person of this request was erased", state=self.request.state)
        return self.subject


# --- deadlines -----------------------------------------------------------------------------------


def holiday_region(profile: TenantProfile) -> str:
    return profile.holiday_region or DEFAULT_HOLIDAY_REGION


def end_of_day(day: dt.date, profile: TenantProfile) -> dt.datetime:
    """The last second of ``day`` in the tenant's zone, as UTC (what ``due_at`` stores)."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=profile.tz).astimezone(dt.UTC)


def domain_request(request: DsarRequest, profile: TenantProfile) -> rules.DsarRequest:
    """The pure workflow value of a stored request (deadline maths live in ``domain.dsar``)."""
    region = holiday_region(profile)
    received_on = request.received_at.astimezone(profile.tz).date()
    months = 0
    if request.extended_until is not None:
        extended_on = request.extended_until.astimezone(profile.tz).date()
        months = next((m for m in range(1, rules.MAX_EXTENSION_MONTHS + 1)
                       if rules.due_date(received_on, region, m) == extended_on), rules.MAX_EXTENSION_MONTHS)
    reasons = tuple(r for r in (request.extension_reason or "").split("\n") if r)
    return rules.DsarRequest(received_on=received_on, holiday_region=region, state=rules.DsarState(request.state),
                             extension_months=months, extension_reasons=reasons,
                             refusal_reason=request.refusal_reason)


def _apply(request: DsarRequest, value: rules.DsarRequest, profile: TenantProfile, now: dt.datetime) -> None:
    """Persist a workflow value onto the row (state, deadlines, refusal, completion time)."""
    request.state = value.state.value
    request.due_at = end_of_day(rules.due_date(value.received_on, value.holiday_region), profile)
    request.extended_until = end_of_day(value.due_on, profile) if value.extension_months else None
    request.extension_reason = "\n".join(value.extension_reasons)[:500] or None
    request.refusal_reason = value.refusal_reason
    if value.state.is_final and request.completed_at is None:
        request.completed_at = now


def move(loaded: Loaded, state: rules.DsarState, now: dt.datetime, *, reason: str | None = None) -> None:
    """Move the request to ``state`` by the domain's rules (``ConflictError`` when not allowed)."""
    value = domain_request(loaded.request, loaded.profile).move_to(state, reason=reason)
    _apply(loaded.request, value, loaded.profile, now)


def view_of(loaded: Loaded, today: dt.date | None = None) -> DsarView:
    r, profile = loaded.request, loaded.profile
    value = domain_request(r, profile)
    ver = r.verification or {}
    pending = [d for d in value.reminders() if today is None or d >= today]
    return DsarView(
        id=r.id, tenant_id=r.tenant_id, tenant_slug=loaded.tenant.slug, kind=r.kind, state=r.state,
        channel=r.channel, received_at=r.received_at, due_on=value.due_on, extended=value.extension_months > 0,
        verification=str(ver.get("status", "pending")), verification_method=ver.get("method"),
        refusal_reason=r.refusal_reason, legal_basis=r.legal_basis, completed_at=r.completed_at,
        overdue=value.is_overdue(today) if today else False, next_reminder=pending[0] if pending else None,
        subject_erased=r.subject_id is None,
    )


# --- loading -------------------------------------------------------------------------------------


async def access_request(
    session: AsyncSession, request_id: uuid.UUID | str, *, tenant_id: uuid.UUID | None = None
) -> Loaded:
    """Load a request (within ``tenant_id`` when given; the operator's CLI sees all tenants).

    Missing and foreign ids raise the same ``NotFoundError``.
    """
    if tenant_id is not None:
        request = await get_owned(session, DsarRequest, tenant_id, request_id)
    else:
        try:
            key = request_id if isinstance(request_id, uuid.UUID) else uuid.UUID(str(request_id))
        except ValueError:
            raise NotFoundError("dsar request not found") from None
        found = await session.get(DsarRequest, key)
        if found is None:
            raise NotFoundError("dsar request not found")
        request = found
    tenant = await tenant_repo.get_tenant(session, request.tenant_id)
    subject = await session.get(Subject, request.subject_id) if request.subject_id else None
    return Loaded(request, tenant, tenant_repo.profile_of(tenant), subject)


def require(loaded: Loaded, kinds: Iterable[str], state: rules.DsarState = rules.DsarState.IN_PROGRESS) -> None:
    """The request must be of one of ``kinds`` and in ``state`` (verified and open by default)."""
    kinds = tuple(kinds)
    if loaded.request.kind not in kinds:
        raise ConflictError(f"this is a {loaded.request.kind} request, not {' or '.join(kinds)}",
                            kind=loaded.request.kind)
    if loaded.request.state != state.value:
        hint = " (verify the identity first)" if loaded.request.state in ("received", "identity_verification") else ""
        raise ConflictError(f"the request is {loaded.request.state}, it must be {state.value}{hint}",
                            state=loaded.request.state)


async def read_details(vault: Vault, loaded: Loaded) -> dict[str, Any]:
    """The encrypted details of the request (identifier given, name, call), decrypted."""
    r = loaded.request
    raw = await vault.keys.decrypt(r.tenant_id, r.details_enc, table="dsar_requests", row_id=r.id, column="details")
    doc = json.loads(raw) if raw else {}
    return doc if isinstance(doc, dict) else {}


async def find_subject(
    vault: Vault, session: AsyncSession, tenant_id: uuid.UUID, kind: Literal["phone", "email"], value: str
) -> tuple[Subject | None, int]:
    """The oldest subject with this phone/e-mail (restricted ones included), and how many share it."""
    idx = await vault.keys.blind_index(tenant_id, kind, value)
    column = Subject.phone_idx if kind == "phone" else Subject.email_idx
    q = select(Subject).where(Subject.tenant_id == tenant_id, column == idx).order_by(Subject.created_at)
    rows = list((await session.scalars(q)).all())
    return (rows[0] if rows else None), len(rows)


# --- receiving -----------------------------------------------------------------------------------


async def do_create_request(
    vault: Vault, tenant_slug: str, kind: str, *, phone: str | None = None, email: str | None = None,
    channel: str = "staff", actor: str,
) -> DsarView:
    """Record a request for the person with this phone number or e-mail address.

    The person is found by blind index; an unknown person gets a subject of their own, so the
    request's details are encrypted under a key that their erasure destroys.
    """
    if kind not in KINDS:
        raise InvalidInputError(f"kind must be one of {', '.join(KINDS)}", field="kind")
    if channel not in CHANNELS:
        raise InvalidInputError(f"channel must be one of {', '.join(CHANNELS)}", field="channel")
    if (phone is None) == (email is None):
        raise InvalidInputError("give either a phone number or an e-mail address", field="phone")
    now = vault.clock.now()
    async with vault.db.transaction() as session:
        tenant = await tenant_repo.require_tenant_by_slug(session, tenant_slug)
        profile = tenant_repo.profile_of(tenant)
        if phone is not None:
            phone = normalize_phone(phone, profile)
            if phone is None:
                raise InvalidInputError("the phone number is empty", field="phone")
            subject, sharing = await find_subject(vault, session, tenant.id, "phone", phone)
        else:
            email = (email or "").strip()
            if not _EMAIL.match(email):
                raise InvalidInputError("not an e-mail address", field="email")
            subject, sharing = await find_subject(vault, session, tenant.id, "email", email)
        known = subject is not None
        if subject is None:
            subject = await subject_repo.add_subject(session, vault.keys, tenant.id, now=now, phone=phone,
                                                     email=email)
        request = DsarRequest(id=uuid.uuid4(), tenant_id=tenant.id, subject_id=subject.id, kind=kind,
                              state=rules.DsarState.RECEIVED.value, channel=channel, received_at=now, due_at=now,
                              verification={"status": "pending"})
        request.details_enc = await vault.keys.encrypt(
            tenant.id, subject.key_id, json.dumps({"phone": phone, "email": email}), table="dsar_requests",
            row_id=request.id, column="details")
        loaded = Loaded(request, tenant, profile, subject)
        _apply(request, domain_request(request, profile), profile, now)
        session.add(request)
        await session.flush()
        view = view_of(loaded, now.astimezone(profile.tz).date())
    await vault.audit.record(actor=actor, action="dsar.receive", tenant_id=tenant.id, object_type="dsar_request",
                             object_id=request.id, details={"kind": kind, "channel": channel, "known": known,
                                                            "sharing_identifier": sharing})
    return view


# --- identity verification -----------------------------------------------------------------------


async def _code_hash(vault: Vault, request: DsarRequest, code: str) -> str:
    """Keyed hash: a copy of the database alone cannot try the million codes offline."""
    keys = await vault.keys.tenant(request.tenant_id)
    return hmac.new(keys.signing, f"dsar-code|{request.id}|{code}".encode(), hashlib.sha256).hexdigest()


def _verification_open(loaded: Loaded) -> dict[str, Any]:
    ver = dict(loaded.request.verification or {})
    if loaded.request.state not in (rules.DsarState.RECEIVED.value, rules.DsarState.IDENTITY_VERIFICATION.value):
        raise ConflictError(f"the request is {loaded.request.state}; identity is no longer open to verification",
                            state=loaded.request.state)
    return ver


async def _code_number(vault: Vault, session: AsyncSession, loaded: Loaded) -> str:
    details = await read_details(vault, loaded)
    phone = details.get("phone")
    if isinstance(phone, str) and phone:
        return phone
    subject = loaded.require_subject()
    contact = await subject_repo.get_contact(session, subject.tenant_id, subject.id)
    stored = (await subject_repo.read_contact(vault.keys, contact)).phone if contact else None
    if not stored:
        raise ConflictError("no phone number is known for this request; confirm the identity by staff instead")
    return stored


_CODE_TEXT = {
    "de": "{name}: Ihr Bestätigungscode für Ihre Datenschutz-Anfrage lautet {code}. Er gilt 10 Minuten.",
    "en": "{name}: your confirmation code for your data protection request is {code}. It is valid for 10 minutes.",
}


async def do_send_code(
    vault: Vault, request_id: uuid.UUID | str, sender_for: Callable[[TenantProfile], CodeSender], *, actor: str,
    tenant_id: uuid.UUID | None = None,
) -> DsarView:
    """Send a fresh 6-digit code by SMS to the requester's number (the one given, else the stored one).

    ``sender_for`` gives the SMS sender for the request's tenant (whose number it sends from).

    The code is kept only as a keyed hash with its expiry; at most three codes are sent per
    request, and wrong attempts add up across codes.
    """
    now = vault.clock.now()
    code = f"{secrets.randbelow(10**6):06d}"
    async with vault.db.transaction() as session:
        loaded = await access_request(session, request_id, tenant_id=tenant_id)
        ver = _verification_open(loaded)
        if ver.get("status") == "locked":
            raise ConflictError("code verification is locked after too many wrong codes; confirm by staff")
        if int(ver.get("codes_sent", 0)) >= MAX_CODES_SENT:
            raise ConflictError(f"{MAX_CODES_SENT} codes were sent already; confirm the identity by staff")
        number = await _code_number(vault, session, loaded)
        ver.update(status="code_sent", method="sms", code_hmac=await _code_hash(vault, loaded.request, code),
                   expires_at=(now + CODE_TTL).isoformat(), codes_sent=int(ver.get("codes_sent", 0)) + 1,
                   attempts=int(ver.get("attempts", 0)))
        loaded.request.verification = ver
        if loaded.request.state == rules.DsarState.RECEIVED.value:
            move(loaded, rules.DsarState.IDENTITY_VERIFICATION, now)
        language = loaded.profile.language
        body = _CODE_TEXT[language].format(name=loaded.profile.name, code=code)
        # Sent inside the transaction: if the provider refuses, no code is on record either.
        await sender_for(loaded.profile).send_sms(number, body)
        view = view_of(loaded, now.astimezone(loaded.profile.tz).date())
    await vault.audit.record(actor=actor, action="dsar.code_sent", tenant_id=loaded.tenant.id,
                             object_type="dsar_request", object_id=loaded.request.id,
                             details={"codes_sent": ver["codes_sent"]})
    return view


async def do_check_code(
    vault: Vault, request_id: uuid.UUID | str, code: str, *, actor: str, tenant_id: uuid.UUID | None = None
) -> DsarView:
    """Check a code the requester read out; right → ``in_progress``, wrong → one attempt less.

    Raises ``AuthenticationError`` for a wrong or expired code (the attempt is recorded first)
    and ``ConflictError`` once verification is locked.
    """
    now = vault.clock.now()
    failure: str | None = None
    async with vault.db.transaction() as session:
        loaded = await access_request(session, request_id, tenant_id=tenant_id)
        ver = _verification_open(loaded)
        if ver.get("status") == "locked":
            raise ConflictError("code verification is locked after too many wrong codes; confirm by staff")
        if ver.get("status") != "code_sent" or "code_hmac" not in ver:
            raise ConflictError("no code was sent for this request")
        expected = str(ver["code_hmac"])
        given = await _code_hash(vault, loaded.request, code.strip()) if _CODE.match(code.strip()) else ""
        expired = now > dt.datetime.fromisoformat(str(ver["expires_at"]))
        if not expired and given and hmac.compare_digest(given, expected):
            ver.update(status="verified", method="sms", verified_at=now.isoformat())
            ver.pop("code_hmac", None)
            ver.pop("expires_at", None)
            loaded.request.verification = ver
            move(loaded, rules.DsarState.IN_PROGRESS, now)
        else:
            attempts = int(ver.get("attempts", 0)) + 1
            ver["attempts"] = attempts
            if expired:
                failure = "the code has expired; send a new one"
            else:
                failure = f"wrong code ({max(MAX_ATTEMPTS - attempts, 0)} attempts left)"
            if attempts >= MAX_ATTEMPTS:
                ver["status"] = "locked"
                ver.pop("code_hmac", None)
                failure = "wrong code; verification by code is now locked (confirm the identity by staff)"
            loaded.request.verification = ver
        view = view_of(loaded, now.astimezone(loaded.profile.tz).date())
    action = "dsar.verify" if failure is None else ("dsar.verify_locked" if ver.get("status") == "locked"
                                                    else "dsar.verify_failed")
    await vault.audit.record(actor=actor, action=action, tenant_id=loaded.tenant.id, object_type="dsar_request",
                             object_id=loaded.request.id,
                             details={"method": "sms", "attempts": int(ver.get("attempts", 0))})
    if failure is not None:
        raise AuthenticationError(failure)
    return view


async def do_confirm_by_staff(
    vault: Vault, request_id: uuid.UUID | str, *, actor: str, tenant_id: uuid.UUID | None = None
) -> DsarView:
    """A member of staff confirms the requester's identity (e.g. in person, by ID document).

    The confirming actor is written to the request and the audit log.
    """
    now = vault.clock.now()
    async with vault.db.transaction() as session:
        loaded = await access_request(session, request_id, tenant_id=tenant_id)
        ver = _verification_open(loaded)
        ver.pop("code_hmac", None)
        ver.pop("expires_at", None)
        ver.update(status="verified", method="staff", verified_by=actor, verified_at=now.isoformat())
        loaded.request.verification = ver
        if loaded.request.state == rules.DsarState.RECEIVED.value:
            move(loaded, rules.DsarState.IDENTITY_VERIFICATION, now)
        move(loaded, rules.DsarState.IN_PROGRESS, now)
        view = view_of(loaded, now.astimezone(loaded.profile.tz).date())
    await vault.audit.record(actor=actor, action="dsar.verify", tenant_id=loaded.tenant.id,
                             object_type="dsar_request", object_id=loaded.request.id, details={"method": "staff"})
    return view


# --- deadlines and closing -----------------------------------------------------------------------


async def do_extend(
    vault: Vault, request_id: uuid.UUID | str, months: int, reason: str, *, actor: str,
    tenant_id: uuid.UUID | None = None,
) -> DsarView:
    """Extend the deadline by ``months`` (two in total at most) for a recorded reason (Art. 12(3))."""
    now = vault.clock.now()
    async with vault.db.transaction() as session:
        loaded = await access_request(session, request_id, tenant_id=tenant_id)
        today = now.astimezone(loaded.profile.tz).date()
        value = domain_request(loaded.request, loaded.profile).extend(months, reason[:240], today=today)
        _apply(loaded.request, value, loaded.profile, now)
        loaded.request.verification = {**loaded.request.verification, "reminders_sent": []}
        view = view_of(loaded, today)
    await vault.audit.record(actor=actor, action="dsar.extend", tenant_id=loaded.tenant.id,
                             object_type="dsar_request", object_id=loaded.request.id,
                             details={"months": value.extension_months, "due_on": view.due_on.isoformat()})
    return view


async def do_refuse(
    vault: Vault, request_id: uuid.UUID | str, reason: str, *, actor: str, tenant_id: uuid.UUID | None = None
) -> DsarView:
    """Refuse the request with a reason (kept on the request, shown to the person)."""
    now = vault.clock.now()
    async with vault.db.transaction() as session:
        loaded = await access_request(session, request_id, tenant_id=tenant_id)
        move(loaded, rules.DsarState.REFUSED, now, reason=reason[:500])
        view = view_of(loaded, now.astimezone(loaded.profile.tz).date())
    await vault.audit.record(actor=actor, action="dsar.refuse", tenant_id=loaded.tenant.id,
                             object_type="dsar_request", object_id=loaded.request.id)
    return view


async def list_requests(
    vault: Vault, *, actor: str, request_id: uuid.UUID | str | None = None, tenant_slug: str | None = None,
    open_only: bool = False, tenant_id: uuid.UUID | None = None,
) -> list[DsarView]:
    """Requests (one, a tenant's, or all), oldest first; the read is audited."""
    now = vault.clock.now()
    async with vault.db.sessions() as session:
        if request_id is not None:
            loaded = [await access_request(session, request_id, tenant_id=tenant_id)]
        else:
            q = select(DsarRequest).order_by(DsarRequest.received_at, DsarRequest.id)
            if tenant_slug is not None:
                tenant = await tenant_repo.require_tenant_by_slug(session, tenant_slug)
                q = q.where(DsarRequest.tenant_id == tenant.id)
            if tenant_id is not None:
                q = q.where(DsarRequest.tenant_id == tenant_id)
            if open_only:
                q = q.where(DsarRequest.state.not_in([s.value for s in rules.DsarState if s.is_final]))
            loaded = [await access_request(session, r.id) for r in (await session.scalars(q)).all()]
        views = [view_of(x, now.astimezone(x.profile.tz).date()) for x in loaded]
    await vault.audit.record(actor=actor, action="dsar.read", tenant_id=loaded[0].tenant.id if request_id else None,
                             object_type="dsar_request" if request_id else None,
                             object_id=str(request_id) if request_id else None, details={"count": len(views)})
    return views


# --- rectification, restriction, objection, withdrawal ---------------------------------------------


def _complete(loaded: Loaded, now: dt.datetime) -> None:
    move(loaded, rules.DsarState.COMPLETED, now)


async def do_rectify(
    vault: Vault, request_id: uuid.UUID | str, changes: Mapping[str, str], *, actor: str,
    tenant_id: uuid.UUID | None = None,
) -> DsarView:
    """Correct contact fields (Art. 16); an empty value clears a field. Audited with field names only."""
    unknown = sorted(set(changes) - set(subject_repo.CONTACT_FIELDS))
    if not changes or unknown:
        raise InvalidInputError(f"fields must be among {', '.join(subject_repo.CONTACT_FIELDS)}", field="field")
    now = vault.clock.now()
    async with vault.db.transaction() as session:
        loaded = await access_request(session, request_id, tenant_id=tenant_id)
        require(loaded, ["rectification"])
        subject = loaded.require_subject()
        values: dict[str, str | None] = {k: (v.strip() or None) for k, v in changes.items()}
        if values.get("phone"):
            values["phone"] = normalize_phone(values["phone"], loaded.profile)
        if values.get("email") and not _EMAIL.match(values["email"] or ""):
            raise InvalidInputError("not an e-mail address", field="email")
        data = subject_repo.ContactData(**{k: v for k, v in values.items() if v is not None})
        contact = await subject_repo.upsert_contact(session, vault.keys, subject, data, now, source="staff")
        for name, value in values.items():
            if value is None:
                setattr(contact, f"{name}_enc", None)
                if name == "phone":
                    subject.phone_idx = None
                if name == "email":
                    subject.email_idx = None
        _complete(loaded, now)
        view = view_of(loaded, now.astimezone(loaded.profile.tz).date())
    await vault.audit.record(actor=actor, action="dsar.rectify", tenant_id=loaded.tenant.id,
                             object_type="dsar_request", object_id=loaded.request.id,
                             details={"fields": sorted(changes), "subject_id": str(subject.id)})
    return view


async def do_restrict(
    vault: Vault, request_id: uuid.UUID | str, *, actor: str, lift: bool = False, tenant_id: uuid.UUID | None = None
) -> DsarView:
    """Restrict processing (Art. 18): the data stays, but no lookup, personalisation or integrations.

    ``lift=True`` on the completed restriction request lifts it again.
    """
    now = vault.clock.now()
    async with vault.db.transaction() as session:
        loaded = await access_request(session, request_id, tenant_id=tenant_id)
        if lift:
            require(loaded, ["restriction"], rules.DsarState.COMPLETED)
            loaded.require_subject().restricted = False
        else:
            require(loaded, ["restriction"])
            loaded.require_subject().restricted = True
            _complete(loaded, now)
        view = view_of(loaded, now.astimezone(loaded.profile.tz).date())
    await vault.audit.record(actor=actor, action="dsar.restriction_lift" if lift else "dsar.restrict",
                             tenant_id=loaded.tenant.id, object_type="dsar_request", object_id=loaded.request.id,
                             details={"subject_id": str(loaded.request.subject_id)})
    return view


async def do_object(
    vault: Vault, request_id: uuid.UUID | str, *, actor: str, tenant_id: uuid.UUID | None = None
) -> DsarView:
    """Objection (Art. 21): processing based on legitimate interest stops for this person, for the future."""
    now = vault.clock.now()
    async with vault.db.transaction() as session:
        loaded = await access_request(session, request_id, tenant_id=tenant_id)
        require(loaded, ["objection"])
        loaded.require_subject().objected = True
        _complete(loaded, now)
        view = view_of(loaded, now.astimezone(loaded.profile.tz).date())
    await vault.audit.record(actor=actor, action="dsar.object", tenant_id=loaded.tenant.id,
                             object_type="dsar_request", object_id=loaded.request.id,
                             details={"subject_id": str(loaded.request.subject_id)})
    return view


async def do_withdraw(
    vault: Vault, request_id: uuid.UUID | str, *, actor: str, purposes: Sequence[str] = WITHDRAWABLE_PURPOSES,
    tenant_id: uuid.UUID | None = None,
) -> DsarView:
    """Withdraw consent (Art. 7(3)) for ``purposes``: a ``withdrawn`` consent record per purpose.

    Effective for the future; what was processed before stays lawful (an erasure request
    removes it).
    """
    bad = sorted(set(purposes) - set(WITHDRAWABLE_PURPOSES))
    if not purposes or bad:
        raise InvalidInputError(f"purposes must be among {', '.join(WITHDRAWABLE_PURPOSES)}", field="purpose")
    now = vault.clock.now()
    async with vault.db.transaction() as session:
        loaded = await access_request(session, request_id, tenant_id=tenant_id)
        require(loaded, ["withdrawal"])
        subject = loaded.require_subject()
        for purpose in dict.fromkeys(purposes):
            session.add(Consent(id=uuid.uuid4(), tenant_id=subject.tenant_id, call_id=None, subject_id=subject.id,
                                purpose=purpose, decision="withdrawn", method="request", decided_at=now,
                                reason=f"dsar:{loaded.request.id}"))
        _complete(loaded, now)
        view = view_of(loaded, now.astimezone(loaded.profile.tz).date())
    await vault.audit.record(actor=actor, action="dsar.withdraw", tenant_id=loaded.tenant.id,
                             object_type="dsar_request", object_id=loaded.request.id,
                             details={"purposes": sorted(set(purposes))})
    return view


async def withdrawn_purposes(session: AsyncSession, tenant_id: uuid.UUID, subject_id: uuid.UUID) -> set[str]:
    """Purposes whose latest subject-level decision is ``withdrawn`` (for the call runtime's gate)."""
    q = (select(Consent.purpose, Consent.decision, func.max(Consent.decided_at))
         .where(Consent.tenant_id == tenant_id, Consent.subject_id == subject_id, Consent.call_id.is_(None))
         .group_by(Consent.purpose, Consent.decision))
    latest: dict[str, tuple[dt.datetime, str]] = {}
    for purpose, decision, at in (await session.execute(q)).all():
        if purpose not in latest or at > latest[purpose][0]:
            latest[purpose] = (at, decision)
    return {p for p, (_at, d) in latest.items() if d == "withdrawn"}


# --- reminders -----------------------------------------------------------------------------------


@dataclass
class ReminderReport:
    """What a reminder run did (counts only)."""

    checked: int = 0
    emailed: int = 0
    logged: int = 0
    failed: int = 0
    overdue: int = 0
    request_ids: list[uuid.UUID] = field(default_factory=list)


_REMINDER_TEXT = {
    "de": ("Erinnerung: Datenschutz-Anfrage {id} ({kind}) ist am {due} fällig",
           "Die Anfrage {id} ({kind}, Stand: {state}) ist am {due} fällig{overdue}.\n"
           "Bitte bearbeiten: voicedesk dsar status {id}\n"),
    "en": ("Reminder: data-subject request {id} ({kind}) is due on {due}",
           "The request {id} ({kind}, state: {state}) is due on {due}{overdue}.\n"
           "Please handle it: voicedesk dsar status {id}\n"),
}


async def send_dsar_reminders(
    vault: Vault, now: dt.datetime, *, mailer: EmailSender | None = None,
    days_before: Iterable[int] = rules.DEFAULT_REMINDER_DAYS, actor: str = "system:jobs",
) -> ReminderReport:
    """Job: remind the controller of open requests whose reminder day (or deadline) has come.

    Each reminder date is sent once (remembered on the request); an overdue request is
    reported once more. Mail goes to the tenant's controller address when a ``mailer`` is
    configured; otherwise (or without an address) the reminder is logged and audited. The
    text names the request id, kind, state and due date — nothing about the person.
    """
    days = tuple(days_before)
    report = ReminderReport()
    final = [s.value for s in rules.DsarState if s.is_final]
    async with vault.db.sessions() as session:
        ids = list((await session.scalars(select(DsarRequest.id).where(DsarRequest.state.not_in(final))
                                          .order_by(DsarRequest.received_at))).all())
    for request_id in ids:
        report.checked += 1
        async with vault.db.transaction() as session:
            loaded = await access_request(session, request_id)
            profile = loaded.profile
            today = now.astimezone(profile.tz).date()
            value = domain_request(loaded.request, profile)
            sent = set((loaded.request.verification or {}).get("reminders_sent", []))
            due_marks = {d.isoformat() for d in value.reminders(days) if d <= today} - sent
            if value.is_overdue(today) and "overdue" not in sent:
                due_marks.add("overdue")
                report.overdue += 1
            if not due_marks:
                continue
            lang = profile.language
            subject_line, text = _REMINDER_TEXT[lang]
            fill = {"id": loaded.request.id, "kind": loaded.request.kind, "state": loaded.request.state,
                    "due": value.due_on.isoformat(),
                    "overdue": (" — ÜBERFÄLLIG" if lang == "de" else " — OVERDUE") if value.is_overdue(today) else ""}
            to = profile.controller.email if profile.controller else None
            channel = "log"
            if mailer is not None and to:
                try:
                    await mailer.send_email(Email(to=to, subject=subject_line.format(**fill), text=text.format(**fill)))
                    channel = "email"
                except ProviderError as exc:
                    log.warning("dsar reminder for request %s not delivered: %s", loaded.request.id, exc.msg)
                    report.failed += 1
                    continue
            else:
                log.warning("dsar request %s (%s) is due on %s%s", loaded.request.id, loaded.request.kind,
                            fill["due"], " (overdue)" if value.is_overdue(today) else "")
            loaded.request.verification = {**loaded.request.verification,
                                           "reminders_sent": sorted(sent | due_marks)}
            tenant_id = loaded.tenant.id
        if channel == "email":
            report.emailed += 1
        else:
            report.logged += 1
        report.request_ids.append(request_id)
        await vault.audit.record(actor=actor, action="dsar.reminder", tenant_id=tenant_id,
                                 object_type="dsar_request", object_id=request_id,
                                 details={"channel": channel, "overdue": "overdue" in due_marks})
    return report
