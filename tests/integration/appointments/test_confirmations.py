"""Confirmations and reminders arrive at real-protocol fakes: Twilio REST (SMS) and an SMTP server (.ics)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import icalendar
import pytest
from sqlalchemy import select
from tests.support.factories import make_tenant
from tests.support.fake_smtp import FakeSmtp
from tests.support.fake_twilio import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio

from voicedesk.appointments.confirmations import Senders, send_confirmation, send_due_reminders
from voicedesk.appointments.service import StoreDialogueTools
from voicedesk.clock import FixedClock
from voicedesk.integrations.email import SmtpEmail
from voicedesk.integrations.sms import TwilioSms
from voicedesk.store.models import Appointment, AuditEntry, Subject
from voicedesk.store.vault import Vault

BERLIN = ZoneInfo("Europe/Berlin")
THU_9 = dt.datetime(2026, 11, 26, 9, 0, tzinfo=BERLIN)
PHONE = "+4917611112222"


def _senders(twilio: FakeTwilio, smtp: FakeSmtp) -> Senders:
    return Senders(
        sms=TwilioSms(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, sender="+4969123456780", base_url=twilio.base_url),
        email=SmtpEmail(host=smtp.host, port=smtp.port, security="none", sender="praxis@praxis-mueller.example"),
        organizer_email="praxis@praxis-mueller.example",
    )


@pytest.mark.req("R-3.4")
async def test_confirmation_by_sms_and_email_with_a_valid_ics(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    tools = StoreDialogueTools(vault, tenant.id, caller_phone=PHONE)
    booked = await tools.book_detailed("checkup", THU_9, staff=None, name="Anna Schulz", phone=PHONE,
                                       email="anna@example.org", language="en")
    async with FakeTwilio.serve() as twilio:
        with FakeSmtp.serve() as smtp:
            delivery = await send_confirmation(vault, _senders(twilio, smtp), tenant.id, booked.appointment_id)
    assert (delivery.sms, delivery.email, delivery.errors) == (True, True, [])
    [sms] = twilio.messages
    assert (sms.to, sms.from_) == (PHONE, "+4969123456780")
    assert sms.body == ("Hausarztpraxis Dr. Müller: your appointment (check-up) is on Thursday, November 26, 2026 "
                        "at 9:00 AM. To cancel or reschedule call +4969123456780")
    [received] = smtp.received
    assert received.rcpt_tos == ["anna@example.org"]
    mail = received.message
    assert mail["Subject"] == "Appointment confirmation: check-up on Thursday, November 26, 2026"
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None and "Dear Anna Schulz," in body.get_content()
    [part] = [p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "REQUEST" and part.get_filename() == "appointment.ics"
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    cal = icalendar.Calendar.from_ical(payload)
    assert cal["METHOD"] == "REQUEST"
    [event] = cal.walk("VEVENT")
    assert str(event["UID"]) == f"{booked.appointment_id}@voicedesk"
    assert event.decoded("DTSTART") == THU_9 and event.decoded("DTSTART").tzinfo.key == "Europe/Berlin"
    assert event["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert event.decoded("DTEND") == THU_9 + dt.timedelta(minutes=30)
    assert str(event["SUMMARY"]) == "check-up – Hausarztpraxis Dr. Müller"
    assert str(event["LOCATION"]) == "Friedrich-Ebert-Anlage 1, 60325 Frankfurt am Main"
    assert str(event["ORGANIZER"]) == "mailto:praxis@praxis-mueller.example"
    assert str(event["ATTENDEE"]) == "mailto:anna@example.org"
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]
    async with vault.db.sessions() as s:
        entry = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "appointment.confirmation"))).one()
    assert entry.details == {"sms": True, "email": True, "skipped": None, "failed": 0}


@pytest.mark.req("R-3.4")
async def test_german_confirmation_text(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    tools = StoreDialogueTools(vault, tenant.id)
    booked = await tools.book_detailed("consultation", THU_9, staff=None, name="Anna Schulz", phone=PHONE,
                                       language="de")
    async with FakeTwilio.serve() as twilio:
        with FakeSmtp.serve() as smtp:
            delivery = await send_confirmation(vault, _senders(twilio, smtp), tenant.id, booked.appointment_id)
    assert (delivery.sms, delivery.email) == (True, False)  # no e-mail address given
    assert twilio.messages[0].body == ("Hausarztpraxis Dr. Müller: Ihr Termin (Sprechstunde) ist am Donnerstag, "
                                       "26. November 2026 um 9:00 Uhr. Absagen oder verschieben: +4969123456780")


@pytest.mark.req("R-3.4")
async def test_provider_failure_is_reported_not_raised(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    booked = await StoreDialogueTools(vault, tenant.id).book_detailed("consultation", THU_9, staff=None,
                                                                      name="Anna Schulz", phone=PHONE)
    async with FakeTwilio.serve() as twilio:
        twilio.fail_next(503)
        with FakeSmtp.serve() as smtp:
            delivery = await send_confirmation(vault, _senders(twilio, smtp), tenant.id, booked.appointment_id)
    assert (delivery.sms, delivery.errors) == (False, ["sms:server"])


@pytest.mark.req("R-8.4")
async def test_restricted_subjects_get_no_messages(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    next_week = THU_9 + dt.timedelta(days=5)
    booked = await StoreDialogueTools(vault, tenant.id).book_detailed(
        "consultation", next_week, staff=None, name="Anna Schulz", phone=PHONE, email="anna@example.org")
    async with vault.db.transaction() as s:
        (await s.scalars(select(Subject))).one().restricted = True
    async with FakeTwilio.serve() as twilio:
        with FakeSmtp.serve() as smtp:
            senders = _senders(twilio, smtp)
            delivery = await send_confirmation(vault, senders, tenant.id, booked.appointment_id)
            reminders = await send_due_reminders(vault, senders, next_week - dt.timedelta(hours=3))
    assert delivery.skipped == "restricted" and not delivery.sms and not delivery.email
    assert [r.skipped for r in reminders] == ["restricted"]
    assert twilio.messages == [] and smtp.received == []


@pytest.mark.req("R-3.4")
async def test_reminders_are_sent_once_within_the_window(vault: Vault, clock: FixedClock) -> None:
    tenant = await make_tenant(vault)  # reminders 24 hours before (profile default)
    tools = StoreDialogueTools(vault, tenant.id)
    fri_9 = THU_9 + dt.timedelta(days=1)
    early = await tools.book_detailed("consultation", fri_9, staff=None, name="Anna Schulz", phone=PHONE,
                                      email="anna@example.org")
    later = await tools.book_detailed("consultation", THU_9 + dt.timedelta(days=5), staff=None, name="Ben Roth",
                                      phone="+4917633334444")
    async with FakeTwilio.serve() as twilio:
        with FakeSmtp.serve() as smtp:
            senders = _senders(twilio, smtp)
            assert await send_due_reminders(vault, senders, fri_9 - dt.timedelta(hours=25)) == []
            first = await send_due_reminders(vault, senders, fri_9 - dt.timedelta(hours=23))
            again = await send_due_reminders(vault, senders, fri_9 - dt.timedelta(hours=22))
            # booked inside the window: the confirmation was enough
            clock.at = THU_9 + dt.timedelta(days=5, hours=-2)
            late = await tools.book_detailed("consultation", THU_9 + dt.timedelta(days=5, minutes=30), staff=None,
                                             name="Cem Aydin", phone="+4917655556666")
            final = await send_due_reminders(vault, senders, THU_9 + dt.timedelta(days=5, hours=-1))
    assert [(d.appointment_id, d.sms, d.email) for d in first] == [(early.appointment_id, True, True)]
    assert again == []
    assert [d.appointment_id for d in final] == [later.appointment_id]
    assert late.appointment_id not in [d.appointment_id for d in final]
    assert twilio.messages[0].body.startswith("Hausarztpraxis Dr. Müller: Erinnerung an Ihren Termin (Sprechstunde)")
    assert smtp.messages[0]["Subject"].startswith("Terminerinnerung: Sprechstunde")
    async with vault.db.sessions() as s:
        row = await s.get(Appointment, early.appointment_id)
    assert row is not None and row.reminder_sent_at == fri_9.astimezone(dt.UTC) - dt.timedelta(hours=23)
