"""Retention periods (R-7.1), per-tenant policies (R-7.2), call-metadata anonymisation (R-7.3)."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

import pytest

from voicedesk.domain.errors import InvalidInputError
from voicedesk.domain.retention import (
    ANONYMISED_CALL_FIELDS,
    Action,
    DataCategory,
    RetentionPolicy,
    action_after_expiry,
    anonymise_call_metadata,
    expiry,
    is_expired,
)

UTC = dt.UTC
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
T0 = dt.datetime(2026, 1, 31, 10, 30, tzinfo=UTC)


@pytest.mark.req("R-7.1")
def test_defaults_are_the_promised_periods() -> None:
    policy = RetentionPolicy()
    assert policy.period(DataCategory.RECORDINGS) == (90, "days")
    assert policy.period(DataCategory.TRANSCRIPTS) == (180, "days")
    assert policy.period(DataCategory.CALL_METADATA) == (12, "months")
    assert policy.period(DataCategory.CUSTOMER_DATA) == (3, "years")
    assert policy.period(DataCategory.LOGS) == (90, "days")


@pytest.mark.req("R-7.1")
@pytest.mark.parametrize(
    ("category", "reference", "expected"),
    [
        (DataCategory.RECORDINGS, T0, dt.datetime(2026, 5, 1, 10, 30, tzinfo=UTC)),
        (DataCategory.TRANSCRIPTS, T0, dt.datetime(2026, 7, 30, 10, 30, tzinfo=UTC)),
        (DataCategory.CALL_METADATA, T0, dt.datetime(2027, 1, 31, 10, 30, tzinfo=UTC)),
        (DataCategory.CALL_METADATA, dt.datetime(2028, 2, 29, tzinfo=UTC), dt.datetime(2029, 2, 28, tzinfo=UTC)),
        (DataCategory.CUSTOMER_DATA, dt.datetime(2028, 2, 29, tzinfo=UTC), dt.datetime(2031, 2, 28, tzinfo=UTC)),
        (DataCategory.CUSTOMER_DATA, T0, dt.datetime(2029, 1, 31, 10, 30, tzinfo=UTC)),
        (DataCategory.LOGS, T0, dt.datetime(2026, 5, 1, 10, 30, tzinfo=UTC)),
    ],
)
def test_expiry_by_category(category: DataCategory, reference: dt.datetime, expected: dt.datetime) -> None:
    assert expiry(category, RetentionPolicy(), reference) == expected


@pytest.mark.req("R-7.1")
def test_month_arithmetic_keeps_the_local_wall_clock_across_dst() -> None:
    start = dt.datetime(2026, 3, 15, 9, 0, tzinfo=BERLIN)  # CET
    policy = RetentionPolicy(call_metadata_months=6)
    end = expiry(DataCategory.CALL_METADATA, policy, start)
    assert end == dt.datetime(2026, 9, 15, 9, 0, tzinfo=BERLIN)  # CEST
    assert end.utcoffset() == dt.timedelta(hours=2)


@pytest.mark.req("R-7.1")
@pytest.mark.req("R-7.2")
def test_tenant_periods_change_expiry() -> None:
    policy = RetentionPolicy.from_settings({"recordings_days": 30, "transcripts_days": 60})
    assert expiry(DataCategory.RECORDINGS, policy, T0) == T0 + dt.timedelta(days=30)
    assert expiry(DataCategory.TRANSCRIPTS, policy, T0) == T0 + dt.timedelta(days=60)
    assert policy.logs_days == 90


@pytest.mark.req("R-7.1")
def test_is_expired_at_the_boundary() -> None:
    policy = RetentionPolicy()
    end = expiry(DataCategory.RECORDINGS, policy, T0)
    assert not is_expired(DataCategory.RECORDINGS, policy, T0, end - dt.timedelta(microseconds=1))
    assert is_expired(DataCategory.RECORDINGS, policy, T0, end)
    assert is_expired(DataCategory.RECORDINGS, policy, T0, end.astimezone(BERLIN) + dt.timedelta(days=1))


@pytest.mark.req("R-7.2")
@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"recordings_days": 29}, "recordings_days"),
        ({"recordings_days": 366}, "recordings_days"),
        ({"recordings_days": "90"}, "recordings_days"),
        ({"recordings_days": 90.0}, "recordings_days"),
        ({"recordings_days": True}, "recordings_days"),
        ({"transcripts_days": 6}, "transcripts_days"),
        ({"transcripts_days": 400}, "transcripts_days"),
        ({"call_metadata_months": 13}, "call_metadata_months"),
        ({"call_metadata_months": 0}, "call_metadata_months"),
        ({"customer_data_years": -1}, "customer_data_years"),
        ({"customer_data_years": 11}, "customer_data_years"),
        ({"logs_days": 91}, "logs_days"),
        ({"logs_days": None}, "logs_days"),
        ({"recording_days": 60}, "recording_days"),
    ],
)
def test_invalid_settings_name_the_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        RetentionPolicy.from_settings(settings)
    assert info.value.field == field
    assert info.value.code == "invalid_input"


@pytest.mark.req("R-7.2")
@pytest.mark.parametrize("days", [30, 365])
def test_recording_range_bounds_are_allowed(days: int) -> None:
    assert RetentionPolicy(recordings_days=days).recordings_days == days


@pytest.mark.req("R-7.1")
def test_naive_times_are_refused() -> None:
    naive = dt.datetime(2026, 1, 1, 12, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(InvalidInputError) as info:
        expiry(DataCategory.LOGS, RetentionPolicy(), naive)
    assert info.value.field == "reference_time"
    with pytest.raises(InvalidInputError) as info:
        is_expired(DataCategory.LOGS, RetentionPolicy(), T0, naive)
    assert info.value.field == "now"


@pytest.mark.req("R-7.1")
def test_only_call_metadata_is_anonymised_rather_than_deleted() -> None:
    assert action_after_expiry(DataCategory.CALL_METADATA) is Action.ANONYMISE
    for category in (DataCategory.RECORDINGS, DataCategory.TRANSCRIPTS, DataCategory.CUSTOMER_DATA,
                     DataCategory.LOGS):
        assert action_after_expiry(category) is Action.DELETE


def _call(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": uuid.UUID(int=1),
        "tenant_id": uuid.UUID(int=2),
        "started_at": dt.datetime(2026, 3, 14, 23, 47, 12, tzinfo=BERLIN),
        "answered_at": dt.datetime(2026, 3, 14, 23, 47, 15, tzinfo=BERLIN),
        "ended_at": dt.datetime(2026, 3, 14, 23, 51, 9, tzinfo=BERLIN),
        "duration_seconds": 237,
        "direction": "inbound",
        "status": "completed",
        "outcome_category": "appointment_booked",
        "language": "de",
        "caller_number": "+4917612345678",
        "called_number": "+4969123456",
        "caller_name": "Anna Müller",
        "subject_id": uuid.UUID(int=3),
        "contact_id": uuid.UUID(int=4),
        "twilio_call_sid": "CA0123456789abcdef0123456789abcdef",
        "summary": "Frau Müller bucht eine Zahnreinigung.",
    }
    record.update(overrides)
    return record


@pytest.mark.req("R-7.3")
def test_anonymised_call_keeps_statistics_only() -> None:
    out = anonymise_call_metadata(_call())
    assert out == {
        "id": uuid.UUID(int=1),
        "tenant_id": uuid.UUID(int=2),
        "date": dt.date(2026, 3, 14),
        "duration_seconds": 240,
        "direction": "inbound",
        "status": "completed",
        "outcome_category": "appointment_booked",
        "language": "de",
    }
    assert tuple(out) == ANONYMISED_CALL_FIELDS
    flat = repr(out)
    for personal in ("4917612345678", "Müller", "CA0123", "23:47", "uuid.UUID(int=3)"):
        assert personal not in flat


@pytest.mark.req("R-7.3")
def test_free_text_outcome_becomes_other_and_missing_values_stay_missing() -> None:
    out = anonymise_call_metadata(_call(outcome_category="Rückruf an Herrn Weber, 0171 2345678",
                                        duration_seconds=None))
    assert out["outcome_category"] == "other"
    assert out["duration_seconds"] is None
    assert anonymise_call_metadata(_call(duration_seconds=4))["duration_seconds"] == 0
    assert anonymise_call_metadata(_call(duration_seconds=15.5))["duration_seconds"] == 20


@pytest.mark.req("R-7.3")
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"started_at": "2026-03-14"}, "started_at"),
        ({"started_at": dt.datetime(2026, 3, 14, 9, 0)}, "started_at"),  # noqa: DTZ001
        ({"duration_seconds": -1}, "duration_seconds"),
        ({"duration_seconds": "60"}, "duration_seconds"),
        ({"duration_seconds": True}, "duration_seconds"),
    ],
)
def test_anonymisation_input_is_checked(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        anonymise_call_metadata(_call(**overrides))
    assert info.value.field == field
