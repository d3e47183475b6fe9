"""Dates, times and numbers as spoken on the phone."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from voicedesk.dialogue.speech import say_date, say_datetime, say_phone, say_time

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def test_german_date_and_time() -> None:
    moment = dt.datetime(2026, 12, 1, 15, 0, tzinfo=BERLIN)
    assert say_datetime(moment, "de") == "Dienstag, den 1. Dezember um 15 Uhr"
    assert say_time(dt.time(9, 30), "de") == "9 Uhr 30"


def test_english_date_and_time() -> None:
    moment = dt.datetime(2026, 12, 1, 15, 0, tzinfo=BERLIN)
    assert say_datetime(moment, "en") == "Tuesday, December 1st at 3 pm"
    assert say_time(dt.time(9, 30), "en") == "9:30 am"
    assert say_date(dt.date(2026, 12, 22), "en") == "Tuesday, December 22nd"
    assert say_date(dt.date(2026, 12, 13), "en") == "Sunday, December 13th"


def test_today_and_tomorrow_are_named() -> None:
    now = dt.datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)
    assert say_datetime(dt.datetime(2026, 11, 30, 14, 0, tzinfo=BERLIN), "de", now) == "heute um 14 Uhr"
    assert (
        say_datetime(dt.datetime(2026, 12, 1, 8, 0, tzinfo=BERLIN), "en", now)
        == "tomorrow, Tuesday, December 1st at 8 am"
    )


def test_phone_digits_are_spaced_for_speech() -> None:
    assert say_phone("+491712345678", "de") == "0 1 7 1, 2 3 4 5 6 7 8"
