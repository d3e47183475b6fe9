"""The slot finder, opening hours and holidays (R-3.4)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from voicedesk.domain.availability import (
    BusySpan,
    Slot,
    find_slots,
    is_open,
    opening_hours_text,
    public_holidays,
)
from voicedesk.domain.errors import InvalidInputError, NotFoundError
from voicedesk.domain.profile import TenantProfile, parse_profile
from voicedesk.domain.when import When, parse_when

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=BERLIN)  # Wednesday
pytestmark = pytest.mark.req("R-3.4")


def at(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN)


def practice(**overrides: Any) -> TenantProfile:
    data: dict[str, Any] = {
        "slug": "praxis",
        "name": "Praxis Dr. Muster",
        "timezone": "Europe/Berlin",
        "holiday_region": "DE-HE",
        "opening_hours": {
            "mon": ["08:00-12:00", "14:00-18:00"],
            "tue": ["08:00-12:00", "14:00-18:00"],
            "wed": "08:00-12:00",
            "thu": ["08:00-12:00", "14:00-18:00"],
            "fri": "08:00-13:00",
        },
        "services": [
            {"id": "checkup", "name": {"de": "Kontrolle", "en": "Check-up"}, "duration_min": 30},
            {"id": "cleaning", "name": {"de": "Reinigung", "en": "Cleaning"}, "duration_min": 45,
             "buffer_min": 15},
        ],
    }
    data.update(overrides)
    return parse_profile(data)


def starts(slots: list[Slot]) -> list[str]:
    return [s.start.isoformat(timespec="minutes") for s in slots]


def wish(text: str, language: str = "de", now: datetime = NOW) -> When:
    got = parse_when(text, now=now, language="de" if language == "de" else "en", tz=BERLIN)
    assert got is not None
    return got


def test_nearest_slots_respect_lead_time_and_grid() -> None:
    slots = find_slots(practice(), service_id="checkup", when=None, now=NOW)
    assert starts(slots) == ["2026-11-25T10:30+01:00", "2026-11-25T10:45+01:00", "2026-11-25T11:00+01:00"]
    assert slots[0].end == at(2026, 11, 25, 11, 0)
    assert slots[0].staff_id is None


def test_lead_time_and_grid_are_configurable() -> None:
    slots = find_slots(practice(), service_id="checkup", when=None, now=at(2026, 11, 25, 10, 7),
                       lead_min=0, grid_min=30, limit=2)
    assert starts(slots) == ["2026-11-25T10:30+01:00", "2026-11-25T11:00+01:00"]


def test_morning_wish_ends_by_noon() -> None:
    slots = find_slots(practice(), service_id="checkup", when=wish("morgen Vormittag"), now=NOW, limit=20)
    assert slots[0].start == at(2026, 11, 26, 8, 0)
    assert slots[-1].end == at(2026, 11, 26, 12, 0)
    assert len(slots) == 15


def test_afternoon_after_three_on_tuesday() -> None:
    slots = find_slots(practice(), service_id="checkup", when=wish("next Tuesday after 3", "en"), now=NOW)
    assert starts(slots) == ["2026-12-01T15:00+01:00", "2026-12-01T15:15+01:00", "2026-12-01T15:30+01:00"]


def test_fully_booked_day_gives_nothing_within_the_day_and_next_day_when_open() -> None:
    busy = [BusySpan(None, at(2026, 11, 26, 8), at(2026, 11, 26, 12)),
            BusySpan(None, at(2026, 11, 26, 14), at(2026, 11, 26, 18))]
    assert find_slots(practice(), service_id="checkup", when=wish("morgen"), now=NOW, existing=busy) == []
    from_tomorrow_on = When(start=at(2026, 11, 26, 0))  # open-ended
    later = find_slots(practice(), service_id="checkup", when=from_tomorrow_on, now=NOW,
                       existing=busy, limit=1)
    assert starts(later) == ["2026-11-27T08:00+01:00"]


def test_closed_weekday_and_own_closed_days() -> None:
    saturday = find_slots(practice(), service_id="checkup", when=wish("Samstag"), now=NOW)
    assert saturday == []
    closed = practice(closed_days=["2026-11-27"])
    assert find_slots(closed, service_id="checkup", when=wish("Freitag"), now=NOW) == []


def test_public_holidays_block_christmas_and_corpus_christi_in_hesse() -> None:
    profile = practice()
    assert find_slots(profile, service_id="checkup", when=wish("25.12."), now=NOW) == []
    june = datetime(2027, 5, 20, 9, 0, tzinfo=BERLIN)
    corpus_christi = wish("27.05.2027", now=june)
    assert find_slots(profile, service_id="checkup", when=corpus_christi, now=june) == []
    hamburg = practice(holiday_region="DE-HH")
    assert starts(find_slots(hamburg, service_id="checkup", when=corpus_christi, now=june, limit=1)) == [
        "2027-05-27T08:00+02:00"
    ]


def test_explicit_holidays_override_the_region() -> None:
    slots = find_slots(practice(), service_id="checkup", when=wish("Freitag"), now=NOW,
                       holidays={date(2026, 11, 27)})
    assert slots == []


def test_public_holidays_by_region() -> None:
    hesse = public_holidays("DE-HE", [2026])
    assert date(2026, 6, 4) in hesse  # Fronleichnam
    assert date(2026, 12, 25) in hesse
    assert date(2026, 6, 4) not in public_holidays("DE", [2026])
    assert public_holidays(None, [2026]) == set()
    with pytest.raises(InvalidInputError):
        public_holidays("XX-YY", [2026])


def test_breaks_are_cut_out() -> None:
    profile = practice(opening_hours={"thu": "08:00-18:00"}, breaks={"thu": "12:00-13:00"})
    slots = find_slots(profile, service_id="checkup", when=wish("Donnerstag zwischen 11 und 14 Uhr"),
                       now=NOW, limit=10)
    assert starts(slots) == [
        "2026-11-26T11:00+01:00", "2026-11-26T11:15+01:00", "2026-11-26T11:30+01:00",
        "2026-11-26T13:00+01:00", "2026-11-26T13:15+01:00", "2026-11-26T13:30+01:00",
    ]


def test_staff_hours_and_staff_choice() -> None:
    profile = practice(
        staff=[
            {"id": "anna", "name": "Anna", "hours": {"thu": "14:00-16:00"}},
            {"id": "ben", "name": "Ben"},
        ],
        services=[
            {"id": "checkup", "name": {"de": "Kontrolle"}, "duration_min": 30, "staff": ["anna"]},
            {"id": "any", "name": {"de": "Beratung"}, "duration_min": 60},
        ],
    )
    slots = find_slots(profile, service_id="checkup", when=wish("Donnerstag"), now=NOW, limit=10)
    assert slots[0].start == at(2026, 11, 26, 14)
    assert slots[-1].end == at(2026, 11, 26, 16)
    assert {s.staff_id for s in slots} == {"anna"}
    # Ben is busy all morning; Anna works only in the afternoon -> nothing before 14:00.
    busy = [BusySpan("ben", at(2026, 11, 26, 8), at(2026, 11, 26, 12))]
    either = find_slots(profile, service_id="any", when=wish("Donnerstag"), now=NOW, existing=busy, limit=1)
    assert (starts(either), either[0].staff_id) == (["2026-11-26T14:00+01:00"], "anna")
    only_ben = find_slots(profile, service_id="any", when=wish("Donnerstag"), now=NOW, staff_id="ben", limit=1)
    assert only_ben[0].staff_id == "ben"
    assert only_ben[0].start == at(2026, 11, 26, 8)
    with pytest.raises(NotFoundError):
        find_slots(profile, service_id="checkup", when=None, now=NOW, staff_id="ben")
    with pytest.raises(NotFoundError):
        find_slots(profile, service_id="any", when=None, now=NOW, staff_id="nobody")


def test_busy_span_of_one_staff_member_leaves_the_other() -> None:
    profile = practice(staff=[{"id": "anna", "name": "Anna"}, {"id": "ben", "name": "Ben"}])
    busy = [BusySpan("anna", at(2026, 11, 26, 8), at(2026, 11, 26, 9))]
    slots = find_slots(profile, service_id="checkup", when=wish("Donnerstag um 8"), now=NOW, existing=busy)
    assert (slots[0].start, slots[0].staff_id) == (at(2026, 11, 26, 8), "ben")


def test_buffer_keeps_distance_to_the_next_appointment() -> None:
    busy = [BusySpan(None, at(2026, 11, 26, 9), at(2026, 11, 26, 10))]
    slots = find_slots(practice(), service_id="cleaning", when=wish("morgen vor 10"), now=NOW, limit=5)
    assert starts(slots)[:2] == ["2026-11-26T08:00+01:00", "2026-11-26T08:15+01:00"]
    booked = find_slots(practice(), service_id="cleaning", when=wish("morgen vor 10"), now=NOW,
                        existing=busy, limit=5)
    # 45 min + 15 min buffer must end by 09:00
    assert starts(booked) == ["2026-11-26T08:00+01:00"]


def test_buffer_may_reach_past_closing_time() -> None:
    slots = find_slots(practice(), service_id="cleaning", when=wish("Freitag"), now=NOW, limit=100)
    assert slots[-1].end == at(2026, 11, 27, 13)


def test_exact_time_first_then_the_nearest_on_that_day() -> None:
    busy = [BusySpan(None, at(2026, 11, 26, 15), at(2026, 11, 26, 15, 30))]
    free = find_slots(practice(), service_id="checkup", when=wish("morgen um 15 Uhr"), now=NOW)
    assert free[0].start == at(2026, 11, 26, 15)
    taken = find_slots(practice(), service_id="checkup", when=wish("morgen um 15 Uhr"), now=NOW,
                       existing=busy)
    # closest first; equal distance: the earlier one
    assert starts(taken) == ["2026-11-26T14:30+01:00", "2026-11-26T15:30+01:00", "2026-11-26T14:15+01:00"]


def test_spacing_spreads_the_offers() -> None:
    slots = find_slots(practice(), service_id="checkup", when=wish("morgen"), now=NOW, spacing_min=60)
    assert starts(slots) == ["2026-11-26T08:00+01:00", "2026-11-26T09:00+01:00", "2026-11-26T10:00+01:00"]


def test_lead_time_never_offers_the_past() -> None:
    slots = find_slots(practice(), service_id="checkup", when=wish("heute"), now=at(2026, 11, 25, 11, 20))
    assert slots == []  # 11:50 would end after 12:00; the afternoon is closed on Wednesdays
    assert find_slots(practice(), service_id="checkup", when=wish("heute Vormittag"), now=NOW, limit=1)[
        0
    ].start == at(2026, 11, 25, 10, 30)


def test_excluded_weekday_is_skipped() -> None:
    now = at(2026, 11, 26, 13)  # Thursday afternoon
    slots = find_slots(practice(), service_id="checkup", when=wish("nicht freitags, vormittags", now=now),
                       now=now, limit=1)
    assert starts(slots) == ["2026-11-30T08:00+01:00"]


def test_asap_gives_the_earliest_free_slot() -> None:
    busy = [BusySpan(None, at(2026, 11, 25, 10), at(2026, 11, 25, 12))]
    slots = find_slots(practice(), service_id="checkup", when=wish("so bald wie möglich"), now=NOW,
                       existing=busy, limit=1)
    assert starts(slots) == ["2026-11-26T08:00+01:00"]


def test_week_window_and_horizon() -> None:
    slots = find_slots(practice(), service_id="checkup", when=wish("nächste Woche"), now=NOW, limit=1)
    assert starts(slots) == ["2026-11-30T08:00+01:00"]
    assert find_slots(practice(), service_id="checkup", when=None, now=NOW, horizon_days=0,
                      lead_min=180) == []
    past = When(start=at(2026, 11, 20, 0), end=at(2026, 11, 21, 0))
    assert find_slots(practice(), service_id="checkup", when=past, now=NOW) == []


def test_dst_spring_forward_day_keeps_wall_clock_hours() -> None:
    profile = practice(opening_hours={"sun": "01:00-04:00", "mon": "08:00-12:00"})
    now = at(2026, 3, 26, 10)
    slots = find_slots(profile, service_id="checkup", when=wish("Sonntag", now=now), now=now, limit=20)
    assert starts(slots) == [
        "2026-03-29T01:00+01:00", "2026-03-29T01:15+01:00", "2026-03-29T01:30+01:00",
        "2026-03-29T01:45+01:00", "2026-03-29T03:00+02:00", "2026-03-29T03:15+02:00", "2026-03-29T03:30+02:00",
    ]
    # 01:45 + 30 min of real time is 03:15 local: allowed, the span is open until 04:00.
    assert all(s.end.astimezone(UTC) - s.start.astimezone(UTC) == timedelta(minutes=30) for s in slots)
    monday = find_slots(profile, service_id="checkup", when=wish("Montag um 9", now=now), now=now, limit=1)
    assert starts(monday) == ["2026-03-30T09:00+02:00"]


def test_dst_fall_back_day() -> None:
    profile = practice(opening_hours={"sun": "08:00-09:00"})
    now = at(2026, 10, 22, 10)
    slots = find_slots(profile, service_id="checkup", when=wish("Sonntag", now=now), now=now, limit=5)
    assert starts(slots) == ["2026-10-25T08:00+01:00", "2026-10-25T08:15+01:00", "2026-10-25T08:30+01:00"]


def test_open_until_midnight() -> None:
    profile = practice(opening_hours={"thu": "22:00-24:00"})
    slots = find_slots(profile, service_id="checkup", when=wish("Donnerstag"), now=NOW, limit=10)
    assert slots[-1].end == at(2026, 11, 27, 0)
    assert is_open(profile, at(2026, 11, 26, 23, 59))


def test_unknown_service_and_bad_arguments() -> None:
    with pytest.raises(NotFoundError):
        find_slots(practice(), service_id="nope", when=None, now=NOW)
    with pytest.raises(ValueError, match="aware"):
        find_slots(practice(), service_id="checkup", when=None, now=datetime(2026, 11, 25))  # noqa: DTZ001
    with pytest.raises(ValueError, match="positive"):
        find_slots(practice(), service_id="checkup", when=None, now=NOW, limit=0)


def test_is_open() -> None:
    profile = practice(breaks={"mon": "10:00-10:30"})
    assert is_open(profile, at(2026, 11, 30, 9))
    assert not is_open(profile, at(2026, 11, 30, 10, 15))  # break
    assert not is_open(profile, at(2026, 11, 30, 12))  # end is exclusive
    assert not is_open(profile, at(2026, 11, 28, 10))  # Saturday
    assert not is_open(profile, at(2026, 12, 25, 10))  # Christmas
    assert not is_open(practice(closed_days=["2026-11-30"]), at(2026, 11, 30, 9))
    assert is_open(profile, at(2026, 12, 25, 10), holidays=set())
    assert is_open(profile, datetime(2026, 11, 30, 8, 30, tzinfo=ZoneInfo("UTC")))  # 09:30 in Berlin
    with pytest.raises(ValueError, match="aware"):
        is_open(profile, datetime(2026, 11, 30, 9))  # noqa: DTZ001


def test_opening_hours_text_german() -> None:
    profile = practice(breaks={"mon": "12:00-14:00"})
    assert opening_hours_text(profile, "de") == (
        "Montag und Dienstag von 8 bis 12 Uhr und von 14 bis 18 Uhr, Mittwoch von 8 bis 12 Uhr, "
        "Donnerstag von 8 bis 12 Uhr und von 14 bis 18 Uhr, Freitag von 8 bis 13 Uhr. "
        "Samstag und Sonntag geschlossen."
    )


def test_opening_hours_text_english_with_runs_and_minutes() -> None:
    profile = practice(opening_hours={
        "mon": "08:30-12:00", "tue": "08:30-12:00", "wed": "08:30-12:00", "sat": "10:00-24:00",
    })
    assert opening_hours_text(profile, "en") == (
        "Monday to Wednesday from 8:30 am to noon, Saturday from 10 am to midnight. "
        "Closed on Thursday and Friday and Sunday."
    )
    assert opening_hours_text(profile, "de") == (
        "Montag bis Mittwoch von 8:30 bis 12 Uhr, Samstag von 10 bis 24 Uhr. "
        "Donnerstag und Freitag und Sonntag geschlossen."
    )


def test_opening_hours_text_without_hours() -> None:
    profile = practice(opening_hours={})
    assert opening_hours_text(profile, "de") == "Wir haben zurzeit keine festen Öffnungszeiten."
    assert opening_hours_text(profile, "en") == "We have no regular opening hours at the moment."


def test_opening_hours_text_afternoon_pm() -> None:
    profile = practice(opening_hours={"fri": "13:00-17:30"})
    assert opening_hours_text(profile, "en").startswith("Friday from 1 pm to 5:30 pm.")


def test_when_none_covers_the_start_day_only_for_exact_wishes() -> None:
    exact = When(start=at(2026, 11, 26, 9), grain="hour")
    slots = find_slots(practice(), service_id="checkup", when=exact, now=NOW, limit=50)
    assert {s.start.date() for s in slots} == {date(2026, 11, 26)}
    assert slots[0].start == at(2026, 11, 26, 9)


def test_opening_hours_text_every_day_open_and_partial_breaks() -> None:
    every_day = {day: "08:00-12:00" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    profile = practice(opening_hours=every_day, breaks={"mon": "07:00-08:30", "tue": "11:00-13:00"})
    assert opening_hours_text(profile, "de") == (
        "Montag von 8:30 bis 12 Uhr, Dienstag von 8 bis 11 Uhr, Mittwoch bis Sonntag von 8 bis 12 Uhr."
    )
