"""Dates, times and numbers the way they are said on the phone, in German and English.

"Dienstag, den 1. Dezember um 15 Uhr" / "Tuesday, December 1st at 3 pm". Text written
here is read by a TTS engine, so digits of phone numbers are spaced out.
"""

from __future__ import annotations

import datetime as dt

import phonenumbers
from babel.dates import format_date

from voicedesk.domain.profile import Language


def _ordinal_en(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return str(n) + {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def say_date(day: dt.date, language: Language, today: dt.date | None = None) -> str:
    """``Dienstag, den 1. Dezember`` / ``Tuesday, December 1st`` (``heute``/``today``)."""
    if today is not None:
        if day == today:
            return "heute" if language == "de" else "today"
        if day == today + dt.timedelta(days=1):
            prefix = "morgen, " if language == "de" else "tomorrow, "
            return prefix + say_date(day, language)
    if language == "de":
        text = str(format_date(day, "EEEE, 'den' d. MMMM", locale="de"))
    else:
        text = str(format_date(day, "EEEE, MMMM", locale="en")) + " " + _ordinal_en(day.day)
    if today is not None and (day - today).days > 300:
        text += f" {day.year}"
    return text


def say_time(t: dt.time, language: Language) -> str:
    """``15 Uhr`` / ``15 Uhr 30``; ``3 pm`` / ``3:30 pm``."""
    if language == "de":
        return f"{t.hour} Uhr" + (f" {t.minute}" if t.minute else "")
    hour = t.hour % 12 or 12
    suffix = "am" if t.hour < 12 else "pm"
    return f"{hour}:{t.minute:02d} {suffix}" if t.minute else f"{hour} {suffix}"


def say_datetime(moment: dt.datetime, language: Language, now: dt.datetime | None = None) -> str:
    """Date and time in the moment's own time zone: ``Dienstag, den 1. Dezember um 15 Uhr``."""
    today = now.astimezone(moment.tzinfo).date() if now is not None else None
    joiner = " um " if language == "de" else " at "
    return say_date(moment.date(), language, today) + joiner + say_time(moment.time(), language)


def say_phone(e164: str, language: Language) -> str:
    """A number in national format with its digits spaced out for TTS: ``0 1 7 1, 2 3 4 …``."""
    try:
        parsed = phonenumbers.parse(e164, None)
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        if not national.startswith("0") and not national.startswith("("):
            national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except phonenumbers.NumberParseException:
        national = e164
    groups = [g for g in national.replace("-", " ").replace("(", "").replace(")", "").split(" ") if g]
    spoken = ", ".join(" ".join(g) for g in groups)
    return spoken.replace("+", "plus ")


def join_words(items: list[str], language: Language) -> str:
    """``A, B und C`` / ``A, B or C`` style lists (``und``/``and``)."""
    word = " und " if language == "de" else " and "
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + word + items[-1]


def join_alternatives(items: list[str], language: Language) -> str:
    word = " oder " if language == "de" else " or "
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + word + items[-1]
