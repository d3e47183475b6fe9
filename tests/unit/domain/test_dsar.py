"""DSAR deadlines (Art. 12(3) GDPR) and the request workflow (R-8.7)."""

from __future__ import annotations

import datetime as dt

import pytest

from voicedesk.domain.dsar import (
    DsarRequest,
    DsarState,
    add_months,
    due_date,
    is_working_day,
    next_working_day,
    reminder_dates,
)
from voicedesk.domain.errors import ConflictError, InvalidInputError

D = dt.date
pytestmark = pytest.mark.req("R-8.7")


@pytest.mark.parametrize(
    ("received", "region", "due", "why"),
    [
        (D(2026, 3, 15), "DE-HE", D(2026, 4, 15), "same day next month (a Wednesday)"),
        (D(2028, 1, 31), "DE-HE", D(2028, 2, 29), "31 Jan in a leap year: last day of February"),
        (D(2026, 1, 31), "DE-HE", D(2026, 3, 2), "31 Jan 2026 -> Sat 28 Feb -> Mon 2 Mar"),
        (D(2029, 1, 29), "DE-HE", D(2029, 2, 28), "29 Jan in a non-leap year: 28 Feb"),
        (D(2028, 2, 29), "DE-HE", D(2028, 3, 29), "29 Feb (leap) -> 29 Mar"),
        (D(2029, 2, 28), "DE-HE", D(2029, 3, 28), "28 Feb of the following non-leap year -> 28 Mar"),
        (D(2026, 3, 31), "DE-HE", D(2026, 4, 30), "31 Mar -> 30 Apr"),
        (D(2026, 3, 30), "DE-HE", D(2026, 4, 30), "30 Mar -> 30 Apr"),
        (D(2026, 11, 24), "DE-HE", D(2026, 12, 24), "24 Dec is a working day (no public holiday)"),
        (D(2026, 11, 25), "DE-HE", D(2026, 12, 28), "25 Dec (Fri), 26 Dec, Sunday -> Mon 28 Dec"),
        (D(2026, 11, 30), "DE-HE", D(2026, 12, 30), "30 Dec is a working day"),
        (D(2026, 12, 1), "DE-HE", D(2027, 1, 4), "New Year's Day (Fri) -> Mon 4 Jan"),
        (D(2026, 12, 31), "DE-HE", D(2027, 2, 1), "31 Dec -> 31 Jan 2027 (Sun) -> Mon 1 Feb"),
        (D(2027, 2, 26), "DE-HE", D(2027, 3, 30), "Good Friday 26 Mar 2027 -> Easter weekend -> Tue 30 Mar"),
        (D(2027, 2, 28), "DE-HE", D(2027, 3, 30), "Sun 28 Mar, Easter Monday 29 Mar -> Tue 30 Mar"),
        (D(2026, 4, 1), "DE-HE", D(2026, 5, 4), "1 May 2026 (Fri) -> Mon 4 May"),
        (D(2026, 7, 15), "DE-HE", D(2026, 8, 17), "Saturday 15 Aug -> Monday"),
        (D(2026, 10, 1), "DE-HE", D(2026, 11, 2), "Sunday 1 Nov -> Monday"),
        (D(2028, 9, 3), "DE-HE", D(2028, 10, 4), "German Unity Day (Tue) -> Wed"),
        (D(2027, 4, 27), "DE-HE", D(2027, 5, 28), "Corpus Christi is a holiday in Hesse"),
        (D(2027, 4, 27), "DE-BE", D(2027, 5, 27), "... but not in Berlin"),
        (D(2027, 4, 27), "DE", D(2027, 5, 27), "national holidays only"),
        (D(2026, 10, 31), "DE-BY", D(2026, 11, 30), "31 Oct -> 30 Nov, a Monday"),
    ],
)
def test_due_date_table(received: dt.date, region: str, due: dt.date, why: str) -> None:
    assert due_date(received, region) == due, why
    assert is_working_day(due, region)


def test_add_months_clamps_to_the_end_of_the_month() -> None:
    assert add_months(D(2026, 1, 31), 1) == D(2026, 2, 28)
    assert add_months(D(2026, 12, 15), 1) == D(2027, 1, 15)
    assert add_months(D(2026, 11, 30), 3) == D(2027, 2, 28)
    assert add_months(D(2028, 1, 31), 3) == D(2028, 4, 30)


def test_weekends_and_holidays() -> None:
    assert not is_working_day(D(2026, 12, 25), "DE-NW")
    assert is_working_day(D(2026, 12, 24), "DE-NW")
    assert is_working_day(D(2026, 12, 31), "DE-NW")
    assert next_working_day(D(2026, 12, 24), "DE-NW") == D(2026, 12, 24)
    assert next_working_day(D(2026, 12, 25), "DE-NW") == D(2026, 12, 28)
    assert not is_working_day(D(2026, 11, 1), "DE-BW")


def test_unknown_region_names_the_field() -> None:
    with pytest.raises(InvalidInputError) as info:
        due_date(D(2026, 1, 1), "XX-YY")
    assert info.value.field == "holiday_region"
    with pytest.raises(InvalidInputError):
        DsarRequest(received_on=D(2026, 1, 1), holiday_region="DE-ZZ")


def test_extension_by_two_months_counts_from_receipt() -> None:
    request = DsarRequest(received_on=D(2028, 1, 31), holiday_region="DE-HE")
    assert request.due_on == D(2028, 2, 29)
    extended = request.extend(2, "numerous recordings to review", today=D(2028, 2, 20))
    # 30 Apr 2028 is a Sunday, 1 May a holiday
    assert extended.due_on == D(2028, 5, 2)
    assert extended.extension_reasons == ("numerous recordings to review",)
    assert due_date(D(2028, 1, 31), "DE-HE", extension_months=2) == D(2028, 5, 2)


def test_extension_in_two_steps_up_to_two_months() -> None:
    request = DsarRequest(received_on=D(2026, 3, 10), holiday_region="DE-HE")
    once = request.extend(1, "complex request", today=D(2026, 4, 10))
    assert once.due_on == D(2026, 5, 11)  # 10 May 2026 is a Sunday
    twice = once.extend(1, "still complex", today=D(2026, 5, 11))
    assert twice.due_on == D(2026, 6, 10)
    assert twice.extension_reasons == ("complex request", "still complex")
    with pytest.raises(InvalidInputError) as info:
        twice.extend(1, "more", today=D(2026, 5, 20))
    assert info.value.field == "months"


def test_extension_only_until_the_due_date_with_a_reason() -> None:
    request = DsarRequest(received_on=D(2026, 3, 15), holiday_region="DE-HE")
    assert request.due_on == D(2026, 4, 15)
    assert request.extend(1, "volume", today=D(2026, 4, 15)).extension_months == 1
    with pytest.raises(ConflictError):
        request.extend(1, "too late", today=D(2026, 4, 16))
    with pytest.raises(InvalidInputError) as info:
        request.extend(1, "   ", today=D(2026, 4, 1))
    assert info.value.field == "reason"
    with pytest.raises(InvalidInputError):
        request.extend(3, "too long", today=D(2026, 4, 1))
    with pytest.raises(InvalidInputError):
        request.extend(0, "nothing", today=D(2026, 4, 1))
    with pytest.raises(InvalidInputError):
        due_date(D(2026, 3, 15), "DE-HE", extension_months=3)


def test_happy_path_through_the_workflow() -> None:
    request = DsarRequest(received_on=D(2026, 3, 15), holiday_region="DE-HE")
    assert request.state is DsarState.RECEIVED
    request = request.move_to(DsarState.IDENTITY_VERIFICATION)
    request = request.move_to(DsarState.IN_PROGRESS)
    request = request.move_to(DsarState.COMPLETED)
    assert request.state.is_final
    assert request.reminders() == []
    assert not request.is_overdue(D(2027, 1, 1))


@pytest.mark.parametrize(
    ("start", "target", "allowed"),
    [
        (DsarState.RECEIVED, DsarState.IDENTITY_VERIFICATION, True),
        (DsarState.RECEIVED, DsarState.IN_PROGRESS, False),
        (DsarState.RECEIVED, DsarState.COMPLETED, False),
        (DsarState.RECEIVED, DsarState.REFUSED, True),
        (DsarState.IDENTITY_VERIFICATION, DsarState.IN_PROGRESS, True),
        (DsarState.IDENTITY_VERIFICATION, DsarState.COMPLETED, False),
        (DsarState.IDENTITY_VERIFICATION, DsarState.REFUSED, True),
        (DsarState.IDENTITY_VERIFICATION, DsarState.RECEIVED, False),
        (DsarState.IN_PROGRESS, DsarState.COMPLETED, True),
        (DsarState.IN_PROGRESS, DsarState.REFUSED, True),
        (DsarState.IN_PROGRESS, DsarState.IDENTITY_VERIFICATION, False),
        (DsarState.COMPLETED, DsarState.REFUSED, False),
        (DsarState.COMPLETED, DsarState.IN_PROGRESS, False),
        (DsarState.REFUSED, DsarState.COMPLETED, False),
        (DsarState.REFUSED, DsarState.RECEIVED, False),
    ],
)
def test_transitions(start: DsarState, target: DsarState, allowed: bool) -> None:
    request = DsarRequest(received_on=D(2026, 3, 15), holiday_region="DE-HE", state=start)
    assert request.can_move_to(target) is allowed
    if allowed:
        assert request.move_to(target, reason="manifestly unfounded").state is target
    else:
        with pytest.raises(ConflictError) as info:
            request.move_to(target, reason="x")
        assert info.value.code == "conflict"
        assert info.value.fields == {"state": start.value, "target": target.value}


def test_refusal_needs_a_reason_and_records_it() -> None:
    request = DsarRequest(received_on=D(2026, 3, 15), holiday_region="DE-HE")
    with pytest.raises(InvalidInputError) as info:
        request.move_to(DsarState.REFUSED)
    assert info.value.field == "reason"
    refused = request.move_to(DsarState.REFUSED, reason=" identity could not be verified ")
    assert refused.refusal_reason == "identity could not be verified"
    with pytest.raises(ConflictError):
        refused.extend(1, "late", today=D(2026, 3, 20))


def test_overdue() -> None:
    request = DsarRequest(received_on=D(2026, 3, 15), holiday_region="DE-HE")
    assert not request.is_overdue(D(2026, 4, 15))
    assert request.is_overdue(D(2026, 4, 16))


def test_reminders_seven_and_two_days_before() -> None:
    request = DsarRequest(received_on=D(2026, 3, 15), holiday_region="DE-HE")
    # due Wed 15 Apr 2026: 8 Apr (Wed) and 13 Apr (Mon)
    assert request.reminders() == [D(2026, 4, 8), D(2026, 4, 13)]


def test_reminder_on_a_non_working_day_comes_the_working_day_before() -> None:
    # due Tue 30 Mar 2027 (after Easter); 2 days before is Easter Sunday -> Thu 25 Mar
    due = due_date(D(2027, 2, 26), "DE-HE")
    assert reminder_dates(due, "DE-HE", (7, 2)) == [D(2027, 3, 23), D(2027, 3, 25)]
    assert reminder_dates(due, "DE-HE", (2, 2)) == [D(2027, 3, 25)]


def test_reminders_are_not_before_receipt() -> None:
    assert reminder_dates(D(2026, 4, 15), "DE-HE", (40, 2), not_before=D(2026, 3, 15)) == [D(2026, 4, 13)]
    with pytest.raises(InvalidInputError):
        reminder_dates(D(2026, 4, 15), "DE-HE", (0,))
