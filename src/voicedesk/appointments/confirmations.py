"""Confirmations after a booking and reminders before an appointment, by SMS and e-mail (R-3.4).

``send_confirmation`` sends the SMS and the e-mail with an ``.ics`` invite in the call's
language (stored with the ``booked`` event). ``send_due_reminders`` is the scheduler's job
function: every few minutes it reminds of appointments starting within the tenant's
``reminders.hours_before``. It claims each appointment by setting ``reminder_sent_at`` in its
own transaction before sending, so overlapping runs (two instances) never send twice — a
crash between claim and send loses that one reminder rather than duplicating it.
Appointments booked inside the reminder window get no reminder (the confirmation was just
sent).

Subjects whose processing is restricted (R-8.4) get nothing: no SMS, no e-mail. A provider
failure is reported in the result, never raised: the booking stands either way.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from babel.dates import format_date, format_time
from sqlalchemy import select, update

from voicedesk.appointments.service import ACTIVE, access_appointment
from voicedesk.domain.errors import ProviderError
from voicedesk.domain.profile import Language, TenantProfile
from voicedesk.integrations.email import Attachment, Email, EmailSender
from voicedesk.integrations.ics import Invite, invite_ics
from voicedesk.integrations.sms import SmsSender
from voicedesk.store.models import Appointment, AppointmentEvent, Subject
from voicedesk.store.repos import subjects as subject_repo
from voicedesk.store.repos import tenants as tenant_repo
from voicedesk.store.vault import Vault

Kind = Literal["confirmation", "reminder"]


@dataclass(frozen=True)
class Senders:
    """The outbound channels of an installation; ``None`` switches a channel off.

    ``organizer_email`` is the calendar organizer of invites (the business's address as
    the relay sends it); the tenant's controller e-mail is used when it is not set.
    """

    sms: SmsSender | None = None
    email: EmailSender | None = None
    organizer_email: str | None = None


@dataclass
class Delivery:
    """What was sent for one appointment."""

    appointment_id: uuid.UUID
    sms: bool = False
    email: bool = False
    skipped: str | None = None  # "restricted", "no_contact", "not_active"
    errors: list[str] = field(default_factory=list)  # ProviderError categories, no personal data


def when_text(start: dt.datetime, language: Language) -> tuple[str, str]:
    """Date and time as written in a message: ("Donnerstag, 26. November 2026", "9:00 Uhr")."""
    if language == "de":
        return (str(format_date(start, "EEEE, d. MMMM y", locale="de")),
                str(format_time(start, "H:mm", locale="de")) + " Uhr")
    return str(format_date(start, "EEEE, MMMM d, y", locale="en")), str(format_time(start, "h:mm a", locale="en"))


def _texts(kind: Kind, language: Language, *, business: str, service: str, start: dt.datetime,
           phone: str | None, name: str | None) -> tuple[str, str, str]:
    """(SMS body, e-mail subject, e-mail body)."""
    day, clock = when_text(start, language)
    if language == "de":
        head = "Terminerinnerung" if kind == "reminder" else "Terminbestätigung"
        sms = f"{business}: {'Erinnerung an Ihren' if kind == 'reminder' else 'Ihr'} Termin ({service}) " \
              f"{'am' if kind == 'reminder' else 'ist am'} {day} um {clock}."
        if phone:
            sms += f" Absagen oder verschieben: {phone}"
        greeting = f"Guten Tag {name}," if name else "Guten Tag,"
        body = (f"{greeting}\n\n{'wir erinnern Sie an Ihren' if kind == 'reminder' else 'hiermit bestätigen wir Ihren'}"
                f" Termin:\n\n{service}\n{day}, {clock}\n\nDie Kalendereinladung finden Sie im Anhang."
                + (f" Wenn Sie den Termin absagen oder verschieben möchten, rufen Sie uns an: {phone}" if phone else "")
                + f"\n\nMit freundlichen Grüßen\n{business}\n")
        return sms, f"{head}: {service} am {day}", body
    head = "Appointment reminder" if kind == "reminder" else "Appointment confirmation"
    sms = f"{business}: {'reminder of your' if kind == 'reminder' else 'your'} appointment ({service}) " \
          f"{'on' if kind == 'reminder' else 'is on'} {day} at {clock}."
    if phone:
        sms += f" To cancel or reschedule call {phone}"
    greeting = f"Dear {name}," if name else "Hello,"
    body = (f"{greeting}\n\n{'this is a reminder of' if kind == 'reminder' else 'we confirm'} your appointment:"
            f"\n\n{service}\n{day}, {clock}\n\nThe calendar invitation is attached."
            + (f" To cancel or reschedule, call us on {phone}." if phone else "")
            + f"\n\nKind regards\n{business}\n")
    return sms, f"{head}: {service} on {day}", body


async def _booking_meta(vault: Vault, appointment: Appointment, profile: TenantProfile) -> tuple[Language, int]:
    """The language the booking was made in, and how often it was moved (the invite's SEQUENCE)."""
    async with vault.db.sessions() as session:
        q = select(AppointmentEvent.kind, AppointmentEvent.data).where(
            AppointmentEvent.appointment_id == appointment.id)
        events = (await session.execute(q)).all()
    booked: dict[str, Any] = next((data for kind, data in events if kind == "booked"), {})
    lang = booked.get("language")
    moves = sum(1 for kind, _ in events if kind in ("rescheduled", "edited"))
    return ("en" if lang == "en" else "de" if lang == "de" else profile.language), moves


async def send_confirmation(vault: Vault, senders: Senders, tenant_id: uuid.UUID, appointment_id: str | uuid.UUID,
                            *, kind: Kind = "confirmation", actor: str = "system") -> Delivery:
    """Send the confirmation (or reminder) of one appointment on every configured channel."""
    async with vault.db.sessions() as session:
        appointment = await access_appointment(session, tenant_id, appointment_id)
        profile = tenant_repo.profile_of(await tenant_repo.get_tenant(session, tenant_id))
        subject = await session.get(Subject, appointment.subject_id) if appointment.subject_id else None
        contact = await subject_repo.get_contact(session, tenant_id, subject.id) if subject else None
    delivery = Delivery(appointment.id)
    if appointment.status not in ACTIVE:
        delivery.skipped = "not_active"
    elif subject is None or contact is None:
        delivery.skipped = "no_contact"
    elif subject.restricted:
        delivery.skipped = "restricted"
    if delivery.skipped is None and contact is not None:
        data = await subject_repo.read_contact(vault.keys, contact)
        language, sequence = await _booking_meta(vault, appointment, profile)
        service = profile.service(appointment.service_id)
        service_name = profile.text(service.name, language) if service else appointment.service_id
        start = appointment.start_at.astimezone(profile.tz)
        business_phone = profile.twilio_numbers[0] if profile.twilio_numbers else None
        sms, subject_line, body = _texts(kind, language, business=profile.name, service=service_name, start=start,
                                         phone=business_phone, name=data.display_name)
        if senders.sms is not None and data.phone and (kind == "confirmation" or profile.reminders.sms):
            try:
                await senders.sms.send_sms(data.phone, sms)
                delivery.sms = True
            except ProviderError as exc:
                delivery.errors.append(f"sms:{exc.category.value}")
        if senders.email is not None and data.email and (kind == "confirmation" or profile.reminders.email):
            organizer = senders.organizer_email or (profile.controller.email if profile.controller else None) \
                or "noreply@voicedesk.invalid"
            ics = invite_ics(Invite(
                uid=f"{appointment.id}@voicedesk", start=start, end=appointment.end_at.astimezone(profile.tz),
                timezone=profile.timezone, summary=f"{service_name} – {profile.name}",
                organizer_email=organizer, organizer_name=profile.name, attendee_email=data.email,
                location=profile.address, sequence=sequence,
            ), now=vault.clock.now())
            email = Email(to=data.email, subject=subject_line, text=body, attachments=(
                Attachment("termin.ics" if language == "de" else "appointment.ics", ics, "text", "calendar",
                           {"method": "REQUEST"}),))
            try:
                await senders.email.send_email(email)
                delivery.email = True
            except ProviderError as exc:
                delivery.errors.append(f"email:{exc.category.value}")
    await vault.audit.record(actor=actor, action=f"appointment.{kind}", tenant_id=tenant_id,
                             object_type="appointment", object_id=appointment.id,
                             details={"sms": delivery.sms, "email": delivery.email, "skipped": delivery.skipped,
                                      "failed": len(delivery.errors)})
    return delivery


async def send_due_reminders(vault: Vault, senders: Senders, now: dt.datetime) -> list[Delivery]:
    """Job function: remind of appointments within each tenant's ``reminders.hours_before``; idempotent."""
    deliveries: list[Delivery] = []
    async with vault.db.sessions() as session:
        tenants = await tenant_repo.list_tenants(session)
    for tenant in tenants:
        profile = tenant_repo.profile_of(tenant)
        window = dt.timedelta(hours=profile.reminders.hours_before)
        async with vault.db.sessions() as session:
            q = select(Appointment.id, Appointment.start_at, Appointment.created_at).where(
                Appointment.tenant_id == tenant.id, Appointment.status.in_(ACTIVE),
                Appointment.reminder_sent_at.is_(None), Appointment.start_at > now,
                Appointment.start_at <= now + window)
            due = [r[0] for r in (await session.execute(q)).all() if r[2] <= r[1] - window]
        for appointment_id in due:
            async with vault.db.transaction() as session:
                claimed = await session.execute(
                    update(Appointment).where(Appointment.id == appointment_id,
                                              Appointment.reminder_sent_at.is_(None))
                    .values(reminder_sent_at=now))
            if getattr(claimed, "rowcount", 0) != 1:
                continue  # another run took it
            deliveries.append(await send_confirmation(vault, senders, tenant.id, appointment_id, kind="reminder",
                                                      actor="job:reminders"))
    return deliveries
