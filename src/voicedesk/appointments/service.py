"""Appointments, messages and data-subject requests in the database: the assistant's tools.

``StoreDialogueTools`` implements ``dialogue.tools.DialogueTools`` for one tenant and one
call (or text chat). Each tool call is one transaction (``vault.db.transaction()``); the
audit entry is written after the commit and names ids and counts only.

Double booking is prevented by ``SlotLock`` rows (see ``locks.py``): a booking first checks
the wished slot against the slot finder (opening hours, holidays, staff, other bookings),
then inserts its locks; when a concurrent call booked an overlapping slot in the meantime
the insert fails on the primary key and ``ConflictError`` is raised.

Who is the caller: a subject is looked up by the blind index of the phone number (a phone
shared by a family may belong to several subjects; the one whose stored name matches, or
who has no name yet, is used, otherwise a new subject with that number is made). Lookup by
name decrypts the contact names of subjects with upcoming appointments of the tenant — a
linear scan that is fine for the small businesses this serves (hundreds of upcoming
appointments), not for large ones. Subjects whose processing is restricted (R-8.4) are
never looked up: a restricted caller is treated like an unknown one.

Staff edits go through ``do_update_appointment``; every change leaves an
``AppointmentEvent``.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import phonenumbers
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError as SQLIntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voicedesk.appointments.locks import busy_spans, lock_units, staff_key, staff_of_key
from voicedesk.dialogue.tools import AppointmentData, DsarKind, Preferences, Urgency
from voicedesk.domain import dsar as dsar_rules
from voicedesk.domain.availability import BusySpan, Slot, find_slots
from voicedesk.domain.errors import ConflictError, InvalidInputError, NotFoundError
from voicedesk.domain.profile import TenantProfile, normalize_e164
from voicedesk.domain.when import When
from voicedesk.store.models import (
    Appointment,
    AppointmentEvent,
    DsarRequest,
    Message,
    SlotLock,
    Subject,
)
from voicedesk.store.repos import subjects as subject_repo
from voicedesk.store.repos import tenants as tenant_repo
from voicedesk.store.repos.base import get_owned
from voicedesk.store.vault import Vault

ACTIVE = ("booked",)


# --- reading -------------------------------------------------------------------------------


def appointment_data(appointment: Appointment, profile: TenantProfile) -> AppointmentData:
    """The appointment as the dialogue layer and the text interface see it (tenant-local ISO)."""
    tz = profile.tz
    return AppointmentData(
        id=str(appointment.id),
        service=appointment.service_id,
        staff=staff_of_key(appointment.staff_id),
        start=appointment.start_at.astimezone(tz).isoformat(),
        end=appointment.end_at.astimezone(tz).isoformat(),
        status=appointment.status,
    )


async def access_appointment(session: AsyncSession, tenant_id: uuid.UUID, appointment_id: str | uuid.UUID
                             ) -> Appointment:
    """Load an appointment of ``tenant_id``; the same ``NotFoundError`` for missing and foreign ids."""
    return await get_owned(session, Appointment, tenant_id, appointment_id)


async def list_history(vault: Vault, tenant_id: uuid.UUID, appointment_id: str | uuid.UUID
                       ) -> list[AppointmentEvent]:
    """The events of an appointment, oldest first."""
    async with vault.db.transaction() as session:
        appointment = await access_appointment(session, tenant_id, appointment_id)
        q = select(AppointmentEvent).where(AppointmentEvent.tenant_id == tenant_id,
                                           AppointmentEvent.appointment_id == appointment.id)
        events = list((await session.scalars(q)).all())
    return sorted(events, key=lambda e: (e.at, int(e.data.get("seq", 0))))


async def _profile(session: AsyncSession, tenant_id: uuid.UUID) -> TenantProfile:
    return tenant_repo.profile_of(await tenant_repo.get_tenant(session, tenant_id))


async def _busy(session: AsyncSession, tenant_id: uuid.UUID, since: dt.datetime, *,
                excluding: uuid.UUID | None = None) -> list[BusySpan]:
    q = select(SlotLock.staff_id, SlotLock.slot_start, SlotLock.appointment_id).where(
        SlotLock.tenant_id == tenant_id, SlotLock.slot_start >= since - dt.timedelta(days=1))
    if excluding is not None:
        q = q.where(SlotLock.appointment_id != excluding)
    rows = (await session.execute(q)).all()
    return busy_spans((r[0], r[1], r[2]) for r in rows)


def _buffer(profile: TenantProfile, service_id: str) -> dt.timedelta:
    service = profile.service(service_id)
    return dt.timedelta(minutes=service.buffer_min if service else 0)


def _free_slot(profile: TenantProfile, service_id: str, start: dt.datetime, staff: str | None, *,
               now: dt.datetime, busy: list[BusySpan]) -> Slot:
    """The slot at exactly ``start`` if it is bookable now, else ``ConflictError``."""
    if start.tzinfo is None:
        raise InvalidInputError("start must carry a UTC offset", field="start")
    wish = When(start=start.astimezone(profile.tz), grain="minute")
    found = find_slots(profile, service_id=service_id, when=wish, now=now, existing=busy, limit=1,
                       staff_id=staff)
    if not found or found[0].start != start:
        raise ConflictError("this slot is not available", field="start")
    return found[0]


# --- writing helpers ---------------------------------------------------------------------------


async def _insert_locks(session: AsyncSession, appointment: Appointment, units: list[dt.datetime],
                        key: str) -> None:
    """Insert lock rows; a unit held by another appointment raises ``ConflictError``."""
    for unit in units:
        session.add(SlotLock(tenant_id=appointment.tenant_id, staff_id=key, slot_start=unit,
                             appointment_id=appointment.id))
    try:
        await session.flush()
    except SQLIntegrityError:
        raise ConflictError("this slot was booked in the meantime", field="start") from None


async def _locks_of(session: AsyncSession, appointment: Appointment) -> set[tuple[str, dt.datetime]]:
    q = select(SlotLock.staff_id, SlotLock.slot_start).where(
        SlotLock.tenant_id == appointment.tenant_id, SlotLock.appointment_id == appointment.id)
    return {(r[0], r[1]) for r in (await session.execute(q)).all()}


async def _move_locks(session: AsyncSession, appointment: Appointment, profile: TenantProfile,
                      start: dt.datetime, end: dt.datetime, key: str) -> int:
    """Lock the new time first, then release the old units (shared units stay held)."""
    old = await _locks_of(session, appointment)
    new = {(key, u) for u in lock_units(start, end + _buffer(profile, appointment.service_id))}
    to_add = sorted(new - old, key=lambda r: (r[0], r[1]))
    for k in sorted({k for k, _ in to_add}):
        await _insert_locks(session, appointment, [u for kk, u in to_add if kk == k], k)
    for k, unit in old - new:
        await session.execute(delete(SlotLock).where(
            SlotLock.tenant_id == appointment.tenant_id, SlotLock.staff_id == k, SlotLock.slot_start == unit,
            SlotLock.appointment_id == appointment.id))
    return len(to_add)


async def _release_locks(session: AsyncSession, appointment: Appointment) -> None:
    await session.execute(delete(SlotLock).where(SlotLock.tenant_id == appointment.tenant_id,
                                                 SlotLock.appointment_id == appointment.id))


async def _add_event(session: AsyncSession, appointment: Appointment, kind: str, actor: str, at: dt.datetime,
                     data: dict[str, Any]) -> None:
    """Append to the appointment's history; ``data["seq"]`` orders events with equal timestamps."""
    count = (await session.execute(select(func.count()).select_from(AppointmentEvent).where(
        AppointmentEvent.appointment_id == appointment.id))).scalar_one()
    session.add(AppointmentEvent(id=uuid.uuid4(), tenant_id=appointment.tenant_id, appointment_id=appointment.id,
                                 kind=kind, actor=actor[:80], at=at, data={**data, "seq": int(count) + 1}))


def _fold(text: str) -> list[str]:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return [t for t in "".join(c if c.isalnum() else " " for c in plain).split() if t]


def names_match(said: str, stored: str) -> bool:
    """Whether a name said on the phone names the stored person.

    Every part said is part of the stored name ("Schulz" finds "Anna Schulz"), or every
    stored part was said ("Frau Anna Schulz").
    """
    said_tokens, stored_tokens = set(_fold(said)), set(_fold(stored))
    return bool(said_tokens) and bool(stored_tokens) and (said_tokens <= stored_tokens or stored_tokens <= said_tokens)


def split_name(name: str) -> subject_repo.ContactData:
    """Said names are stored as first name(s) and a last name (one word: last name only)."""
    parts = name.split()
    if not parts:
        return subject_repo.ContactData()
    if len(parts) == 1:
        return subject_repo.ContactData(last_name=parts[0])
    return subject_repo.ContactData(first_name=" ".join(parts[:-1]), last_name=parts[-1])


def normalize_phone(phone: str | None, profile: TenantProfile) -> str | None:
    """E.164 form of a number said or typed (national numbers in the business's country)."""
    if phone is None or not phone.strip():
        return None
    region = "DE"
    if profile.twilio_numbers:
        parsed = phonenumbers.parse(profile.twilio_numbers[0])
        region = phonenumbers.region_code_for_number(parsed) or region
    try:
        return normalize_e164(phone, region)
    except ValueError:
        raise InvalidInputError("not a valid phone number", field="phone") from None


def dsar_due_at(received_at: dt.datetime, profile: TenantProfile) -> dt.datetime:
    """End of the due day (tenant-local 23:59:59) of a request received at ``received_at`` (Art. 12(3))."""
    received_on = received_at.astimezone(profile.tz).date()
    if profile.holiday_region:
        day = dsar_rules.due_date(received_on, profile.holiday_region)
    else:
        day = dsar_rules.add_months(received_on, 1)
        while day.weekday() >= 5:
            day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=profile.tz).astimezone(dt.UTC)


@dataclass(frozen=True)
class Booked:
    """Result of a booking: the appointment and whether the caller is a new subject."""

    appointment: AppointmentData
    appointment_id: uuid.UUID
    subject_id: uuid.UUID
    new_subject: bool
    locks: int


async def _subject_for(vault: Vault, session: AsyncSession, tenant_id: uuid.UUID, *, name: str, phone: str | None,
                       email: str | None, now: dt.datetime) -> tuple[Subject, bool]:
    """The booking person: a subject with this number whose name matches (or has none yet), else a new one."""
    keys = vault.keys
    candidates: list[Subject] = []
    if phone:
        candidates = await _subjects(vault, session, tenant_id, "phone", phone)
    elif email:
        candidates = await _subjects(vault, session, tenant_id, "email", email)
    data = split_name(name)
    data.phone, data.email = phone, email
    for subject in candidates:
        contact = await subject_repo.get_contact(session, tenant_id, subject.id)
        stored = (await subject_repo.read_contact(keys, contact)).display_name if contact else None
        if stored is None or names_match(name, stored):
            if stored is not None:
                data.first_name = data.last_name = None  # keep the name as first stored
            subject.last_contact_at = now
            await subject_repo.upsert_contact(session, keys, subject, data, now)
            return subject, False
    subject = await subject_repo.add_subject(session, keys, tenant_id, now=now, phone=phone, email=email)
    await subject_repo.upsert_contact(session, keys, subject, data, now)
    return subject, True


async def _subjects(vault: Vault, session: AsyncSession, tenant_id: uuid.UUID, kind: Literal["phone", "email"],
                    value: str) -> list[Subject]:
    """Subjects with this phone number / e-mail, oldest first; restricted ones are never looked up (R-8.4)."""
    idx = await vault.keys.blind_index(tenant_id, kind, value)
    column = Subject.phone_idx if kind == "phone" else Subject.email_idx
    q = select(Subject).where(Subject.tenant_id == tenant_id, column == idx, Subject.restricted.is_(False))
    return list((await session.scalars(q.order_by(Subject.created_at))).all())


# --- the tools ---------------------------------------------------------------------------------


class StoreDialogueTools:
    """Database-backed ``DialogueTools`` for one tenant and one conversation.

    ``caller_phone`` is the E.164 number the call came from (``None`` when withheld);
    ``call_id`` links created rows to the call record; ``actor`` names the conversation in
    history and audit entries (e.g. ``"call:<id>"``, ``"chat"``).
    """

    def __init__(self, vault: Vault, tenant_id: uuid.UUID, *, call_id: uuid.UUID | None = None,
                 caller_phone: str | None = None, actor: str = "assistant") -> None:
        self.vault = vault
        self.tenant_id = tenant_id
        self.call_id = call_id
        self.caller_phone = caller_phone
        self.actor = actor
        self.booked: list[uuid.UUID] = []

    # -- availability -----------------------------------------------------------------------

    async def find_slots(
        self, service_id: str, when: When | None, preferences: Preferences | None = None, *,
        after: dt.datetime | None = None, limit: int = 5,
    ) -> list[Slot]:
        now = self.vault.clock.now()
        async with self.vault.db.transaction() as session:
            profile = await _profile(session, self.tenant_id)
            busy = await _busy(session, self.tenant_id, now)
        staff = preferences.staff_id if preferences is not None else None
        if after is not None and when is None:
            when = When(start=after.astimezone(profile.tz))
        fetch = limit if after is None else limit * 4
        slots = find_slots(profile, service_id=service_id, when=when, now=now, existing=busy, limit=fetch,
                           staff_id=staff)
        if after is not None:
            slots = [s for s in slots if s.start >= after]
        return slots[:limit]

    # -- booking --------------------------------------------------------------------------------

    async def book(
        self, service_id: str, start: dt.datetime, *, staff: str | None, name: str, phone: str | None,
        email: str | None = None, preferences: Preferences | None = None,
    ) -> AppointmentData:
        return (await self.book_detailed(service_id, start, staff=staff, name=name, phone=phone, email=email,
                                         preferences=preferences)).appointment

    async def book_detailed(
        self, service_id: str, start: dt.datetime, *, staff: str | None, name: str, phone: str | None,
        email: str | None = None, preferences: Preferences | None = None, language: str | None = None,
    ) -> Booked:
        """``book`` with the ids the caller of the service may need (confirmations, tests)."""
        if not name.strip():
            raise InvalidInputError("a booking needs a name", field="name")
        now = self.vault.clock.now()
        keys = self.vault.keys
        async with self.vault.db.transaction() as session:
            profile = await _profile(session, self.tenant_id)
            busy = await _busy(session, self.tenant_id, now)
            slot = _free_slot(profile, service_id, start, staff, now=now, busy=busy)
            phone = normalize_phone(phone, profile)
            subject, new_subject = await _subject_for(self.vault, session, self.tenant_id, name=name, phone=phone,
                                                       email=email, now=now)
            appointment = Appointment(
                id=uuid.uuid4(), tenant_id=self.tenant_id, subject_id=subject.id, call_id=self.call_id,
                service_id=service_id, staff_id=staff_key(slot.staff_id), start_at=slot.start.astimezone(dt.UTC),
                end_at=slot.end.astimezone(dt.UTC), status="booked", created_at=now, updated_at=now,
            )
            if preferences is not None:
                prefs = json.dumps({"staff_id": preferences.staff_id, "note": preferences.note})
                appointment.preferences_enc = await keys.encrypt(
                    self.tenant_id, subject.key_id, prefs, table="appointments", row_id=appointment.id,
                    column="preferences")
            session.add(appointment)
            await session.flush()
            units = lock_units(slot.start, slot.end + _buffer(profile, service_id))
            await _insert_locks(session, appointment, units, appointment.staff_id)
            await _add_event(session, appointment, "booked", self.actor, now, {
                "service": service_id, "staff": appointment.staff_id, "start": appointment.start_at.isoformat(),
                "end": appointment.end_at.isoformat(), "language": language or profile.language,
                "call_id": str(self.call_id) if self.call_id else None,
            })
            await session.flush()
            data = appointment_data(appointment, profile)
        await self.vault.audit.record(actor=self.actor, action="appointment.book", tenant_id=self.tenant_id,
                                      object_type="appointment", object_id=appointment.id,
                                      details={"locks": len(units), "new_subject": new_subject})
        self.booked.append(appointment.id)
        return Booked(data, appointment.id, subject.id, new_subject, len(units))

    # -- finding, cancelling, moving ----------------------------------------------------------

    async def find_caller_appointments(self, *, phone: str | None = None, name: str | None = None
                                       ) -> list[AppointmentData]:
        now = self.vault.clock.now()
        keys = self.vault.keys
        async with self.vault.db.transaction() as session:
            profile = await _profile(session, self.tenant_id)
            q = (select(Appointment).join(Subject, Subject.id == Appointment.subject_id)
                 .where(Appointment.tenant_id == self.tenant_id, Appointment.status.in_(ACTIVE),
                        Appointment.start_at >= now, Subject.restricted.is_(False)))
            try:
                phone = normalize_phone(phone, profile)
            except InvalidInputError:
                return []
            if phone:
                idx = await keys.blind_index(self.tenant_id, "phone", phone)
                q = q.where(Subject.phone_idx == idx)
            elif not name:
                return []
            rows = list((await session.scalars(q.order_by(Appointment.start_at))).all())
            if not phone and name:
                rows = [a for a in rows if await self._named(session, a.subject_id, name)]
        await self.vault.audit.record(actor=self.actor, action="appointment.lookup", tenant_id=self.tenant_id,
                                      details={"by": "phone" if phone else "name", "count": len(rows)})
        return [appointment_data(a, profile) for a in rows]

    async def _named(self, session: AsyncSession, subject_id: uuid.UUID | None, name: str) -> bool:
        if subject_id is None:
            return False
        contact = await subject_repo.get_contact(session, self.tenant_id, subject_id)
        if contact is None:
            return False
        stored = (await subject_repo.read_contact(self.vault.keys, contact)).display_name
        return stored is not None and names_match(name, stored)

    async def _access_active(self, session: AsyncSession, appointment_id: str) -> Appointment:
        """Like ``access_appointment``; a cancelled appointment is as unknown to the caller as a missing one."""
        appointment = await access_appointment(session, self.tenant_id, appointment_id)
        if appointment.status not in ACTIVE:
            raise NotFoundError("appointment not found")
        return appointment

    async def cancel(self, appointment_id: str) -> AppointmentData:
        now = self.vault.clock.now()
        async with self.vault.db.transaction() as session:
            profile = await _profile(session, self.tenant_id)
            appointment = await self._access_active(session, appointment_id)
            appointment.status = "cancelled"
            appointment.updated_at = now
            await _release_locks(session, appointment)
            await _add_event(session, appointment, "cancelled", self.actor, now, {})
            await session.flush()
            data = appointment_data(appointment, profile)
        await self.vault.audit.record(actor=self.actor, action="appointment.cancel", tenant_id=self.tenant_id,
                                      object_type="appointment", object_id=appointment.id)
        return data

    async def reschedule(self, appointment_id: str, new_start: dt.datetime, *, staff: str | None = None
                         ) -> AppointmentData:
        now = self.vault.clock.now()
        async with self.vault.db.transaction() as session:
            profile = await _profile(session, self.tenant_id)
            appointment = await self._access_active(session, appointment_id)
            busy = await _busy(session, self.tenant_id, now, excluding=appointment.id)
            slot = _free_slot(profile, appointment.service_id, new_start, staff, now=now, busy=busy)
            old = {"start": appointment.start_at.isoformat(), "staff": appointment.staff_id}
            added = await _move_locks(session, appointment, profile, slot.start, slot.end, staff_key(slot.staff_id))
            appointment.start_at = slot.start.astimezone(dt.UTC)
            appointment.end_at = slot.end.astimezone(dt.UTC)
            appointment.staff_id = staff_key(slot.staff_id)
            appointment.reminder_sent_at = None
            appointment.updated_at = now
            await _add_event(session, appointment, "rescheduled", self.actor, now, {
                "from": old, "to": {"start": appointment.start_at.isoformat(), "staff": appointment.staff_id}})
            await session.flush()
            data = appointment_data(appointment, profile)
        await self.vault.audit.record(actor=self.actor, action="appointment.reschedule", tenant_id=self.tenant_id,
                                      object_type="appointment", object_id=appointment.id,
                                      details={"locks_added": added})
        return data

    # -- messages and requests ----------------------------------------------------------------

    async def take_message(self, *, name: str | None, phone: str | None, reason: str, urgency: Urgency) -> str:
        now = self.vault.clock.now()
        keys = self.vault.keys
        async with self.vault.db.transaction() as session:
            phone = normalize_phone(phone, await _profile(session, self.tenant_id))
            subject = await self._subject_or_new(session, phone=phone, email=None, now=now)
            message = Message(id=uuid.uuid4(), tenant_id=self.tenant_id, subject_id=subject.id, call_id=self.call_id,
                              urgency=urgency, status="open", created_at=now)
            for column, value in (("name", name), ("phone", phone), ("reason", reason)):
                setattr(message, f"{column}_enc", await keys.encrypt(
                    self.tenant_id, subject.key_id, value, table="messages", row_id=message.id, column=column))
            session.add(message)
            await session.flush()
        await self.vault.audit.record(actor=self.actor, action="message.create", tenant_id=self.tenant_id,
                                      object_type="message", object_id=message.id, details={"urgency": urgency})
        return str(message.id)

    async def record_dsar_request(self, kind: DsarKind, *, phone: str | None, email: str | None = None,
                                  name: str | None = None) -> str:
        now = self.vault.clock.now()
        keys = self.vault.keys
        async with self.vault.db.transaction() as session:
            phone = normalize_phone(phone, await _profile(session, self.tenant_id))
            subject = await self._subject_or_new(session, phone=phone, email=email, now=now)
            due_at = dsar_due_at(now, await _profile(session, self.tenant_id))
            request = DsarRequest(
                id=uuid.uuid4(), tenant_id=self.tenant_id, subject_id=subject.id, kind=kind, state="received",
                channel="call", received_at=now, due_at=due_at,
                # The caller is not yet verified; a number that matches the line they call from is a hint only.
                verification={"status": "pending", "caller_number_matches": bool(
                    phone and self.caller_phone and phone == self.caller_phone)},
            )
            details = json.dumps({"name": name, "phone": phone, "email": email,
                                  "call_id": str(self.call_id) if self.call_id else None})
            request.details_enc = await keys.encrypt(self.tenant_id, subject.key_id, details, table="dsar_requests",
                                                     row_id=request.id, column="details")
            session.add(request)
            await session.flush()
        await self.vault.audit.record(actor=self.actor, action="dsar.receive", tenant_id=self.tenant_id,
                                      object_type="dsar_request", object_id=request.id,
                                      details={"kind": kind, "channel": "call"})
        return str(request.id)

    async def _subject_or_new(self, session: AsyncSession, *, phone: str | None, email: str | None,
                              now: dt.datetime) -> Subject:
        """The subject of this number / e-mail, or a new one (a withheld number gets its own)."""
        found = (await _subjects(self.vault, session, self.tenant_id, "phone", phone) if phone else []) or (
            await _subjects(self.vault, session, self.tenant_id, "email", email) if email else [])
        subject = found[0] if found else await subject_repo.add_subject(
            session, self.vault.keys, self.tenant_id, now=now, phone=phone, email=email)
        subject.last_contact_at = now
        return subject


# --- staff edits -------------------------------------------------------------------------------


async def do_update_appointment(
    vault: Vault, tenant_id: uuid.UUID, appointment_id: str | uuid.UUID, *, start: dt.datetime | None = None,
    staff: str | None = None, notes: str | None = None, actor: str,
) -> AppointmentData:
    """Staff edit: move (keeping the duration), reassign, or set notes; history is kept.

    Staff are trusted to place appointments outside the offered slots (e.g. before opening),
    but never on top of another booking: overlapping locks raise ``ConflictError``.
    """
    now = vault.clock.now()
    async with vault.db.transaction() as session:
        profile = await _profile(session, tenant_id)
        appointment = await access_appointment(session, tenant_id, appointment_id)
        changes: dict[str, Any] = {}
        if start is not None or staff is not None:
            if appointment.status not in ACTIVE:
                raise ConflictError("the appointment is not active", field="status")
            if start is not None and start.tzinfo is None:
                raise InvalidInputError("start must carry a UTC offset", field="start")
            if staff is not None and profile.staff and all(s.id != staff for s in profile.staff):
                raise InvalidInputError("unknown staff member", field="staff")
            new_start = (start or appointment.start_at).astimezone(dt.UTC)
            new_end = new_start + (appointment.end_at - appointment.start_at)
            key = staff if staff is not None else appointment.staff_id
            changes["from"] = {"start": appointment.start_at.isoformat(), "staff": appointment.staff_id}
            await _move_locks(session, appointment, profile, new_start, new_end, key)
            appointment.start_at, appointment.end_at, appointment.staff_id = new_start, new_end, key
            changes["to"] = {"start": new_start.isoformat(), "staff": key}
            if start is not None:
                appointment.reminder_sent_at = None
        if notes is not None:
            if appointment.subject_id is None:
                raise InvalidInputError("this appointment has no person to attach notes to", field="notes")
            subject = await subject_repo.get_subject(session, tenant_id, appointment.subject_id)
            appointment.notes_enc = await vault.keys.encrypt(tenant_id, subject.key_id, notes, table="appointments",
                                                             row_id=appointment.id, column="notes")
            changes["notes_changed"] = True
        appointment.updated_at = now
        await _add_event(session, appointment, "edited", actor, now, changes)
        await session.flush()
        data = appointment_data(appointment, profile)
    await vault.audit.record(actor=actor, action="appointment.update", tenant_id=tenant_id,
                             object_type="appointment", object_id=appointment.id,
                             details={"fields": sorted(k for k in ("start", "staff", "notes")
                                                       if {"start": start, "staff": staff, "notes": notes}[k]
                                                       is not None)})
    return data


async def do_place_appointment(
    vault: Vault, tenant_id: uuid.UUID, service_id: str, start: dt.datetime, *, end: dt.datetime | None = None,
    staff: str | None = None, name: str | None = None, phone: str | None = None, actor: str,
) -> AppointmentData:
    """Staff enter an appointment or a block directly (trusted: no opening-hours check).

    ``end`` defaults to the service's duration; ``staff=None`` in a profile with staff
    blocks every staff member. Overlaps with existing bookings raise ``ConflictError``.
    """
    if start.tzinfo is None or (end is not None and end.tzinfo is None):
        raise InvalidInputError("times must carry a UTC offset", field="start")
    now = vault.clock.now()
    async with vault.db.transaction() as session:
        profile = await _profile(session, tenant_id)
        service = profile.service(service_id)
        if service is None:
            raise NotFoundError("unknown service", field="service_id")
        if staff is not None and all(s.id != staff for s in profile.staff):
            raise InvalidInputError("unknown staff member", field="staff")
        end = end or start + dt.timedelta(minutes=service.duration_min)
        subject_id: uuid.UUID | None = None
        if name or phone:
            subject, _new = await _subject_for(vault, session, tenant_id, name=name or "",
                                               phone=normalize_phone(phone, profile), email=None, now=now)
            subject_id = subject.id
        appointment = Appointment(
            id=uuid.uuid4(), tenant_id=tenant_id, subject_id=subject_id, service_id=service_id,
            staff_id=staff_key(staff), start_at=start.astimezone(dt.UTC), end_at=end.astimezone(dt.UTC),
            status="booked", created_at=now, updated_at=now,
        )
        session.add(appointment)
        await session.flush()
        units = lock_units(start, end + _buffer(profile, service_id))
        keys = [staff] if staff is not None else [s.id for s in profile.staff] or [staff_key(None)]
        for key in keys:
            await _insert_locks(session, appointment, units, key)
        await _add_event(session, appointment, "booked", actor, now, {
            "service": service_id, "staff": appointment.staff_id, "start": appointment.start_at.isoformat(),
            "end": appointment.end_at.isoformat(), "language": profile.language, "call_id": None})
        await session.flush()
        data = appointment_data(appointment, profile)
    await vault.audit.record(actor=actor, action="appointment.place", tenant_id=tenant_id,
                             object_type="appointment", object_id=appointment.id,
                             details={"locks": len(units) * len(keys)})
    return data


async def recognise_caller(vault: Vault, tenant_id: uuid.UUID, phone: str | None, *, actor: str) -> str | None:
    """The stored name of a caller known by number, for the greeting; ``None`` when unknown or restricted."""
    if not phone:
        return None
    async with vault.db.transaction() as session:
        profile = await _profile(session, tenant_id)
        try:
            normalized = normalize_phone(phone, profile) or ""
        except InvalidInputError:
            return None
        subjects = await _subjects(vault, session, tenant_id, "phone", normalized)
        if len(subjects) != 1:  # unknown, or a shared family phone: do not guess who is calling
            return None
        contact = await subject_repo.get_contact(session, tenant_id, subjects[0].id)
        name = (await subject_repo.read_contact(vault.keys, contact)).display_name if contact else None
    await vault.audit.record(actor=actor, action="subject.recognise", tenant_id=tenant_id, object_type="subject",
                             object_id=subjects[0].id, details={"named": name is not None})
    return name


async def read_preferences(vault: Vault, appointment: Appointment) -> Preferences | None:
    """Decrypt the preferences stored with a booking."""
    raw = await vault.keys.decrypt(appointment.tenant_id, appointment.preferences_enc, table="appointments",
                                   row_id=appointment.id, column="preferences")
    if raw is None:
        return None
    doc = json.loads(raw)
    return Preferences(staff_id=doc.get("staff_id"), note=doc.get("note"))
