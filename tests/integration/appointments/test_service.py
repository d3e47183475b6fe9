"""The database-backed dialogue tools: booking races, overlaps, cancel, reschedule, history, isolation.

Demo tenant praxis-mueller, "now" = Wednesday 2026-11-25 10:00 Berlin. Thursday 26th is open
08-12 and 14-19; check-ups take 30 min + 10 min buffer (Dr. Müller), consultations 15 min.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from tests.support.factories import make_tenant

from voicedesk.appointments.service import (
    StoreDialogueTools,
    do_place_appointment,
    do_update_appointment,
    list_history,
    read_preferences,
    recognise_caller,
)
from voicedesk.dialogue.tools import AppointmentData, Preferences
from voicedesk.domain.errors import ConflictError, NotFoundError
from voicedesk.domain.when import When
from voicedesk.store.models import (
    Appointment,
    AuditEntry,
    Contact,
    DsarRequest,
    Message,
    SlotLock,
    Subject,
)
from voicedesk.store.repos import subjects as subject_repo
from voicedesk.store.vault import Vault

BERLIN = ZoneInfo("Europe/Berlin")
THU_9 = dt.datetime(2026, 11, 26, 9, 0, tzinfo=BERLIN)


def at(hour: int, minute: int = 0) -> dt.datetime:
    return THU_9.replace(hour=hour, minute=minute)


async def _locks(vault: Vault, appointment_id: str | None = None) -> list[tuple[str, dt.datetime]]:
    async with vault.db.sessions() as s:
        q = select(SlotLock.staff_id, SlotLock.slot_start).order_by(SlotLock.slot_start)
        if appointment_id is not None:
            q = q.where(SlotLock.appointment_id == uuid.UUID(appointment_id))
        return [(r[0], r[1]) for r in (await s.execute(q)).all()]


async def _count(vault: Vault, model: type[object]) -> int:
    async with vault.db.sessions() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


@pytest.mark.req("R-3.4")
async def test_racing_bookings_for_one_slot_exactly_one_succeeds(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    tools = [StoreDialogueTools(vault, tenant.id, actor=f"call:{i}") for i in range(4)]
    results = await asyncio.gather(
        *(t.book("consultation", at(9), staff="dr-mueller", name=f"Caller {i}", phone=f"+49176111100{i:02d}")
          for i, t in enumerate(tools)),
        return_exceptions=True,
    )
    booked = [r for r in results if isinstance(r, dict)]
    assert len(booked) == 1
    assert sum(isinstance(r, ConflictError) for r in results) == 3
    assert await _count(vault, Appointment) == 1
    locks = await _locks(vault)
    assert [u for _, u in locks] == [at(9).astimezone(dt.UTC) + dt.timedelta(minutes=m) for m in (0, 5, 10)]
    assert {k for k, _ in locks} == {"dr-mueller"}


@pytest.mark.req("R-3.4")
async def test_racing_bookings_of_overlapping_slots_with_different_durations(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    a = StoreDialogueTools(vault, tenant.id)
    b = StoreDialogueTools(vault, tenant.id)
    # check-up 09:00-09:30 + 10 min buffer vs. consultation 09:30-09:45: the buffer overlaps
    results = await asyncio.gather(
        a.book("checkup", at(9), staff="dr-mueller", name="Anna Schulz", phone="+4917611112222"),
        b.book("consultation", at(9, 30), staff="dr-mueller", name="Ben Roth", phone="+4917633334444"),
        return_exceptions=True,
    )
    assert sum(isinstance(r, dict) for r in results) == 1
    assert sum(isinstance(r, ConflictError) for r in results) == 1


@pytest.mark.req("R-3.4")
async def test_overlaps_respect_duration_and_buffer(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    tools = StoreDialogueTools(vault, tenant.id)
    checkup = await tools.book("checkup", at(9), staff="dr-mueller", name="Anna Schulz", phone="+4917611112222")
    assert checkup["start"] == "2026-11-26T09:00:00+01:00"
    assert checkup["end"] == "2026-11-26T09:30:00+01:00"
    assert len(await _locks(vault, checkup["id"])) == 8  # 30 min + 10 min buffer in 5-minute units
    with pytest.raises(ConflictError):  # inside the check-up's buffer
        await tools.book("consultation", at(9, 30), staff="dr-mueller", name="Ben Roth", phone=None)
    with pytest.raises(ConflictError):  # a check-up at 08:30 would need its buffer until 09:10
        await tools.book("checkup", at(8, 30), staff="dr-mueller", name="Ben Roth", phone=None)
    # ends exactly when the check-up begins: fine; another doctor at the same time: fine
    await tools.book("consultation", at(8, 45), staff="dr-mueller", name="Ben Roth", phone=None)
    await tools.book("consultation", at(9), staff="dr-schmidt", name="Cem Aydin", phone=None)
    await tools.book("consultation", at(9, 45), staff="dr-mueller", name="Dora Wolf", phone=None)
    offered = await tools.find_slots("consultation", When(start=at(8), end=at(10, 30), grain="day"),
                                     Preferences(staff_id="dr-mueller"), limit=10)
    starts = [s.start.astimezone(BERLIN).strftime("%H:%M") for s in offered]
    assert starts == ["08:00", "08:15", "08:30", "10:00", "10:15"]
    # without a staff wish the free doctor is chosen
    auto = await tools.book("consultation", at(9, 15), staff=None, name="Emil Berg", phone=None)
    assert auto["staff"] == "dr-schmidt"


@pytest.mark.req("R-3.4")
async def test_slots_outside_opening_hours_or_in_the_past_are_refused(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    tools = StoreDialogueTools(vault, tenant.id)
    for start in (at(12, 30), at(7), dt.datetime(2026, 11, 28, 9, 0, tzinfo=BERLIN),
                  dt.datetime(2026, 11, 25, 10, 15, tzinfo=BERLIN)):  # lunch, early, Saturday, inside lead time
        with pytest.raises(ConflictError):
            await tools.book("consultation", start, staff="dr-mueller", name="Anna Schulz", phone=None)
    with pytest.raises(NotFoundError):
        await tools.book("massage", at(9), staff=None, name="Anna Schulz", phone=None)
    assert await _count(vault, Appointment) == 0


@pytest.mark.req("R-3.4")
@pytest.mark.req("R-3.3")
async def test_booking_stores_the_caller_encrypted_and_finds_them_again(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    phone = "+4917611112222"
    tools = StoreDialogueTools(vault, tenant.id, caller_phone=phone, actor="chat")
    first = await tools.book("consultation", at(9), staff=None, name="Anna Schulz", phone=phone,
                             email="anna@example.org", preferences=Preferences(note="vormittags, nicht freitags"))
    second = await tools.book("checkup", at(15), staff=None, name="Anna Schulz", phone="0176 11112222")
    assert await _count(vault, Subject) == 1  # the same person, found by the blind index
    async with vault.db.sessions() as s:
        contact = (await s.scalars(select(Contact))).one()
        data = await subject_repo.read_contact(vault.keys, contact)
        appointment = await s.get(Appointment, uuid.UUID(first["id"]))
        assert appointment is not None
        prefs = await read_preferences(vault, appointment)
        raw = b"".join(v for v in (contact.first_name_enc, contact.last_name_enc, contact.phone_enc) if v)
    assert (data.first_name, data.last_name, data.phone, data.email) == ("Anna", "Schulz", phone, "anna@example.org")
    assert prefs == Preferences(note="vormittags, nicht freitags")
    assert b"Schulz" not in raw and phone.encode() not in raw

    by_phone = await tools.find_caller_appointments(phone=phone)
    assert [a["id"] for a in by_phone] == [first["id"], second["id"]]
    assert [a["id"] for a in await tools.find_caller_appointments(name="Frau Anna Schulz")] == [
        first["id"], second["id"]]
    assert len(await tools.find_caller_appointments(name="Schulz")) == 2
    assert await tools.find_caller_appointments(name="Anna Schmidt") == []
    assert await tools.find_caller_appointments(phone="+4917699999999") == []

    # a family member on the same phone is a person of their own
    await tools.book("consultation", at(10), staff=None, name="Paul Schulz", phone=phone)
    assert await _count(vault, Subject) == 2
    assert len(await tools.find_caller_appointments(phone=phone)) == 3
    assert len(await tools.find_caller_appointments(name="Paul Schulz")) == 1
    assert len(await tools.find_caller_appointments(name="Schulz")) == 3

    async with vault.db.sessions() as s:
        entries = list((await s.scalars(select(AuditEntry).where(AuditEntry.action == "appointment.book"))).all())
    assert len(entries) == 3
    dumped = repr([(e.actor, e.details, e.object_id) for e in entries])
    assert "Schulz" not in dumped and "11112222" not in dumped


@pytest.mark.req("R-3.4")
async def test_cancel_frees_the_slot(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    tools = StoreDialogueTools(vault, tenant.id)
    booked = await tools.book("consultation", at(9), staff="dr-mueller", name="Anna Schulz", phone="+4917611112222")
    cancelled = await tools.cancel(booked["id"])
    assert cancelled == AppointmentData(**{**booked, "status": "cancelled"})
    assert await _locks(vault) == []
    assert await tools.find_caller_appointments(phone="+4917611112222") == []
    with pytest.raises(NotFoundError):  # as unknown to a caller as a missing one
        await tools.cancel(booked["id"])
    again = await tools.book("consultation", at(9), staff="dr-mueller", name="Ben Roth", phone=None)
    assert again["status"] == "booked"
    history = await list_history(vault, tenant.id, booked["id"])
    assert [e.kind for e in history] == ["booked", "cancelled"]


@pytest.mark.req("R-3.4")
async def test_reschedule_moves_the_locks_atomically_and_keeps_history(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    tools = StoreDialogueTools(vault, tenant.id, actor="call:1")
    mine = await tools.book("checkup", at(9), staff="dr-mueller", name="Anna Schulz", phone="+4917611112222")
    other = await tools.book("consultation", at(10), staff="dr-mueller", name="Ben Roth", phone=None)
    # onto another booking: refused, nothing changes
    with pytest.raises(ConflictError):
        await tools.reschedule(mine["id"], at(9, 45))
    assert len(await _locks(vault, mine["id"])) == 8
    # overlapping its own old time is fine
    moved = await tools.reschedule(mine["id"], at(9, 15))
    assert (moved["start"], moved["end"], moved["status"]) == (
        "2026-11-26T09:15:00+01:00", "2026-11-26T09:45:00+01:00", "booked")
    units = [u for _, u in await _locks(vault, mine["id"])]
    assert units[0] == at(9, 15).astimezone(dt.UTC) and len(units) == 8
    # the freed quarter hour is bookable again
    await tools.book("consultation", at(9), staff="dr-mueller", name="Cem Aydin", phone=None)
    assert [a["start"] for a in await tools.find_caller_appointments(phone="+4917611112222")] == [
        "2026-11-26T09:15:00+01:00"]
    history = await list_history(vault, tenant.id, mine["id"])
    assert [e.kind for e in history] == ["booked", "rescheduled"]
    assert history[1].actor == "call:1"
    assert history[1].data["from"]["start"] == at(9).astimezone(dt.UTC).isoformat()
    assert other["status"] == "booked"


@pytest.mark.req("R-3.4")
async def test_staff_edit_moves_reassigns_and_notes_with_history(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    tools = StoreDialogueTools(vault, tenant.id)
    a = await tools.book("consultation", at(9), staff="dr-mueller", name="Anna Schulz", phone=None)
    b = await tools.book("consultation", at(11), staff="dr-schmidt", name="Ben Roth", phone=None)
    edited = await do_update_appointment(vault, tenant.id, a["id"], start=at(7, 45), notes="bring X-ray",
                                         actor="user:1")
    assert edited["start"] == "2026-11-26T07:45:00+01:00"  # staff may place outside the offered slots
    with pytest.raises(ConflictError):
        await do_update_appointment(vault, tenant.id, a["id"], start=at(11), staff="dr-schmidt", actor="user:1")
    moved = await do_update_appointment(vault, tenant.id, a["id"], staff="dr-schmidt", actor="user:1")
    assert moved["staff"] == "dr-schmidt"
    assert [k for k, _ in await _locks(vault, a["id"])] == ["dr-schmidt"] * 3
    history = await list_history(vault, tenant.id, a["id"])
    assert [(e.kind, e.actor) for e in history] == [("booked", "assistant"), ("edited", "user:1"),
                                                    ("edited", "user:1")]
    assert history[1].data["notes_changed"] is True and "X-ray" not in repr(history[1].data)
    async with vault.db.sessions() as s:
        row = await s.get(Appointment, uuid.UUID(a["id"]))
        assert row is not None
        notes = await vault.keys.decrypt(tenant.id, row.notes_enc, table="appointments", row_id=row.id,
                                         column="notes")
    assert notes == "bring X-ray"
    assert b["status"] == "booked"


@pytest.mark.req("R-11.3")
async def test_another_tenant_cannot_touch_an_appointment(vault: Vault) -> None:
    a = await make_tenant(vault)
    b = await make_tenant(vault, slug="harbor-auto")
    mine = await StoreDialogueTools(vault, a.id).book("consultation", at(9), staff=None, name="Anna Schulz",
                                                      phone="+4917611112222")
    foreign = StoreDialogueTools(vault, b.id)
    errors = []
    for target in (mine["id"], str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(NotFoundError) as exc:
            await foreign.cancel(target)
        errors.append(exc.value.to_dict())
    assert errors[0] == errors[1] == errors[2]
    with pytest.raises(NotFoundError) as exc:
        await foreign.reschedule(mine["id"], dt.datetime(2026, 11, 26, 9, 0, tzinfo=BERLIN))
    assert exc.value.to_dict() == errors[0]
    with pytest.raises(NotFoundError) as exc:
        await do_update_appointment(vault, b.id, mine["id"], notes="x", actor="user:b")
    assert exc.value.to_dict() == errors[0]
    assert await foreign.find_caller_appointments(phone="+4917611112222") == []
    assert await foreign.find_caller_appointments(name="Anna Schulz") == []
    # B's bookings do not block A's calendar either
    assert len(await StoreDialogueTools(vault, a.id).find_caller_appointments(phone="+4917611112222")) == 1
    history = await list_history(vault, a.id, mine["id"])
    assert [e.kind for e in history] == ["booked"]


@pytest.mark.req("R-4.1")
async def test_take_message_is_a_callback_task_with_encrypted_details(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    tools = StoreDialogueTools(vault, tenant.id, caller_phone="+4917611112222")
    message_id = await tools.take_message(name="Anna Schulz", phone="+4917611112222",
                                          reason="Rückruf wegen Laborwerten", urgency="high")
    async with vault.db.sessions() as s:
        message = await s.get(Message, uuid.UUID(message_id))
        assert message is not None
        fields = [await vault.keys.decrypt(tenant.id, getattr(message, f"{c}_enc"), table="messages",
                                           row_id=message.id, column=c) for c in ("name", "phone", "reason")]
    assert fields == ["Anna Schulz", "+4917611112222", "Rückruf wegen Laborwerten"]
    assert (message.urgency, message.status) == ("high", "open")
    # an anonymous caller gets a subject of their own
    await tools.take_message(name=None, phone=None, reason="Frage", urgency="normal")
    assert await _count(vault, Subject) == 2


@pytest.mark.req("R-4.1")
async def test_dsar_said_on_the_phone_is_recorded_with_a_due_date(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    tools = StoreDialogueTools(vault, tenant.id, caller_phone="+4917611112222")
    await tools.book("consultation", at(9), staff=None, name="Anna Schulz", phone="+4917611112222")
    request_id = await tools.record_dsar_request("erasure", phone="+4917611112222", name="Anna Schulz")
    async with vault.db.sessions() as s:
        request = await s.get(DsarRequest, uuid.UUID(request_id))
        subject_count = int((await s.execute(select(func.count()).select_from(Subject))).scalar_one())
    assert request is not None
    assert (request.kind, request.state, request.channel) == ("erasure", "received", "call")
    # one month → Friday 25 December, a holiday in Hesse like the 26th; Sunday → Monday the 28th
    assert request.due_at.astimezone(BERLIN) == dt.datetime(2026, 12, 28, 23, 59, 59, tzinfo=BERLIN)
    assert request.verification == {"status": "pending", "caller_number_matches": True}
    assert subject_count == 1  # linked to the known caller


@pytest.mark.req("R-3.4")
async def test_restricted_callers_are_not_looked_up(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    tools = StoreDialogueTools(vault, tenant.id)
    await tools.book("consultation", at(9), staff=None, name="Anna Schulz", phone="+4917611112222")
    async with vault.db.transaction() as s:
        subject = (await s.scalars(select(Subject))).one()
        subject.restricted = True
    assert await tools.find_caller_appointments(phone="+4917611112222") == []
    assert await tools.find_caller_appointments(name="Anna Schulz") == []


@pytest.mark.req("R-3.4")
async def test_a_block_without_staff_closes_the_calendar_for_everyone(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    block = await do_place_appointment(vault, tenant.id, "consultation", at(8), end=at(12), actor="user:1")
    assert block["staff"] is None
    tools = StoreDialogueTools(vault, tenant.id)
    with pytest.raises(ConflictError):
        await tools.book("consultation", at(9), staff="dr-schmidt", name="Anna Schulz", phone=None)
    offered = await tools.find_slots("consultation", When(start=at(0), end=at(23, 59), grain="day"), limit=1)
    assert offered[0].start == at(14)
    assert await recognise_caller(vault, tenant.id, "+4917611112222", actor="chat") is None
    await tools.book("consultation", at(14), staff=None, name="Anna Schulz", phone="+4917611112222")
    assert await recognise_caller(vault, tenant.id, "0176 11112222", actor="chat") == "Anna Schulz"
