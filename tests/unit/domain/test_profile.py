from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from voicedesk.domain.errors import ProfileError
from voicedesk.domain.profile import TimeSpan, normalize_e164, parse_profile


def base(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "slug": "salon-x", "name": "Salon X", "timezone": "Europe/Berlin",
        "twilio_numbers": ["069 1234567"], "opening_hours": {"mon": ["09:00-12:00", "13:00-18:00"], "sun": "closed"},
        "services": [{"id": "cut", "name": {"de": "Haarschnitt"}, "duration_min": 30, "staff": ["eva"]}],
        "staff": [{"id": "eva", "name": "Eva", "hours": {"mon": "10:00-14:00"}}],
    }
    data.update(overrides)
    return data


def test_valid_profile_normalises_numbers_and_hours() -> None:
    p = parse_profile(base(forwarding_number="+49 (69) 9999-00", number_languages={"069 1234567": "en"}))
    assert p.twilio_numbers == ["+49691234567"]
    assert p.forwarding_number == "+4969999900"
    assert p.opening_hours["mon"] == (TimeSpan(start=dt.time(9), end=dt.time(12)),
                                      TimeSpan(start=dt.time(13), end=dt.time(18)))
    assert p.opening_hours["sun"] == ()
    assert p.language_for_number("+49691234567") == "en"
    assert p.language_for_number("+4930111") == "de"
    assert p.consent_mode == "ask" and p.retention.recordings_days == 90
    assert p.text({"en": "Hi"}, "de") == "Hi"
    assert p.service("cut") is not None and p.service("nope") is None


def test_profile_survives_a_json_round_trip() -> None:
    p = parse_profile(base())
    assert parse_profile(p.model_dump(mode="json")) == p


def test_midnight_end_is_allowed() -> None:
    assert TimeSpan.parse("18:00-24:00").end == dt.time.max


@pytest.mark.parametrize(("change", "field"), [
    ({"slug": "Bad Slug!"}, "slug"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"opening_hours": {"mon": ["12:00-09:00"]}}, "opening_hours"),
    ({"opening_hours": {"mon": ["09:00-12:00", "11:00-13:00"]}}, "opening_hours"),
    ({"opening_hours": {"funday": ["09:00-12:00"]}}, "opening_hours"),
    ({"opening_hours": {"mon": ["9-12"]}}, "opening_hours"),
    ({"twilio_numbers": ["not a number"]}, "twilio_numbers"),
    ({"services": [{"id": "cut", "name": {"de": "x"}, "duration_min": 30, "staff": ["ghost"]}]}, "unknown staff"),
    ({"services": [{"id": "a", "name": {"de": "x"}, "duration_min": 0}]}, "duration_min"),
    ({"retention": {"recordings_days": 10}}, "recordings_days"),
    ({"language": "en", "languages": ["de"]}, "languages"),
    ({"colour": "red"}, "colour"),
])
def test_invalid_profiles_name_the_problem(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ProfileError) as exc:
        parse_profile(base(**change))
    assert field in exc.value.msg
    assert exc.value.code == "invalid_profile"


@pytest.mark.parametrize("raw", ["hello", "+49 1"])
def test_e164_errors_do_not_echo_the_input(raw: str) -> None:
    with pytest.raises(ValueError, match="not a") as exc:
        normalize_e164(raw)
    assert raw not in str(exc.value)


@pytest.mark.req("R-7.1")
@pytest.mark.parametrize(("retention", "field"), [
    ({"recordings_days": 400}, "recordings_days"),
    ({"transcripts_days": 3}, "transcripts_days"),
    ({"call_metadata_days": 500}, "call_metadata_days"),
    ({"logs_days": 120}, "logs_days"),
    ({"transcripts_after_expiry": "keep"}, "transcripts_after_expiry"),
])
def test_retention_cannot_exceed_what_the_policy_promises(retention: dict[str, Any], field: str) -> None:
    with pytest.raises(ProfileError) as exc:
        parse_profile(base(retention=retention))
    assert field in exc.value.msg


@pytest.mark.req("R-7.1")
def test_retention_defaults_are_the_policy_defaults() -> None:
    r = parse_profile(base()).retention
    assert (r.recordings_days, r.transcripts_days, r.call_metadata_days, r.customer_years_after_relationship,
            r.logs_days, r.transcripts_after_expiry) == (90, 180, 365, 3, 90, "delete")
