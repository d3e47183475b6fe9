"""The in-memory tools: real slot finding, no double booking, cancel and reschedule."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from tests.support.scenarios import load_profile
from voicedesk.dialogue.memory_tools import InMemoryDialogueTools
from voicedesk.domain.errors import ConflictError, NotFoundError
from voicedesk.domain.profile import TenantProfile
from voicedesk.domain.when import parse_when

PROFILES = Path(__file__).resolve().parents[2] / "scenarios" / "profiles"


@pytest.fixture
def profile() -> TenantProfile:
    return load_profile(PROFILES / "praxis.yaml")


def _now(profile: TenantProfile) -> dt.datetime:
    return dt.datetime(2026, 11, 30, 9, 0, tzinfo=profile.tz)


@pytest.mark.req("R-3.4")
async def test_racing_bookings_for_one_slot_exactly_one_wins(profile: TenantProfile) -> None:
    tools = InMemoryDialogueTools(profile, now=_now(profile))
    start = dt.datetime(2026, 12, 1, 10, 0, tzinfo=profile.tz)
    results = await asyncio.gather(
        *(tools.book("consultation", start, staff=None, name=f"Caller {i}", phone=None) for i in range(5)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, dict) for r in results) == 1
    assert sum(isinstance(r, ConflictError) for r in results) == 4
    assert len(tools.appointments) == 1


@pytest.mark.req("R-3.4")
async def test_booked_slot_is_no_longer_offered_and_cancel_frees_it(profile: TenantProfile) -> None:
    now = _now(profile)
    tools = InMemoryDialogueTools(profile, now=now)
    when = parse_when("Dienstag um 10 Uhr", now=now, language="de", tz=profile.tz)
    first = (await tools.find_slots("checkup", when))[0]
    booked = await tools.book("checkup", first.start, staff=first.staff_id, name="Anna Müller", phone="+491711")
    assert booked["start"] == "2026-12-01T10:00:00+01:00"
    assert (await tools.find_slots("checkup", when))[0].start != first.start
    cancelled = await tools.cancel(booked["id"])
    assert cancelled["status"] == "cancelled"
    assert (await tools.find_slots("checkup", when))[0].start == first.start
    with pytest.raises(NotFoundError):
        await tools.cancel(booked["id"])


@pytest.mark.req("R-3.4")
async def test_reschedule_keeps_history_and_checks_the_new_slot(profile: TenantProfile) -> None:
    now = _now(profile)
    tools = InMemoryDialogueTools(profile, now=now)
    other = tools.add_appointment("consultation", dt.datetime(2026, 12, 3, 9, 0, tzinfo=profile.tz), name="X")
    booked = await tools.book(
        "consultation", dt.datetime(2026, 12, 1, 10, 0, tzinfo=profile.tz), staff=None, name="Eva", phone=None
    )
    with pytest.raises(ConflictError):
        await tools.reschedule(booked["id"], other.start)
    moved = await tools.reschedule(booked["id"], dt.datetime(2026, 12, 3, 11, 0, tzinfo=profile.tz))
    assert moved["start"] == "2026-12-03T11:00:00+01:00"
    stored = next(a for a in tools.appointments if a.id == booked["id"])
    assert [kind for kind, _ in stored.history] == ["booked", "rescheduled"]


async def test_find_caller_appointments_by_number_or_name(profile: TenantProfile) -> None:
    tools = InMemoryDialogueTools(profile, now=_now(profile))
    tools.add_appointment(
        "checkup", dt.datetime(2026, 12, 4, 9, 0, tzinfo=profile.tz), name="Jürgen Müller", phone="+4915199887766"
    )
    tools.add_appointment("checkup", dt.datetime(2026, 11, 27, 9, 0, tzinfo=profile.tz), name="Jürgen Müller")
    assert len(await tools.find_caller_appointments(phone="+4915199887766")) == 1
    assert len(await tools.find_caller_appointments(name="Mueller")) == 1  # past ones are not listed
    assert await tools.find_caller_appointments(name="Meier") == []
