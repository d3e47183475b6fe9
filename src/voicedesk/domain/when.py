"""What a caller means by "when": German and English time expressions, resolved against "now".

``parse_when("nächste Woche Dienstag nach 15 Uhr", now=…, language="de", tz=…)`` returns a
``When``: the first instant that matches (``start``), where the wish ends (``end``), how
precise it is (``grain``) and the constraints a slot must meet on every day (``earliest``,
``latest``, ``excluded_weekdays``, ``asap``). The slot finder (``availability``) reads it.

Why a rule parser and not ``dateparser``: phone callers speak a small, known set of forms
("halb drei", "am dritten", "nächste Woche Dienstag", "not Friday", "next Tuesday after 3"),
several of which dateparser gets wrong or not at all (German "halb drei" is 2:30, business
hours make it 14:30; "nicht freitags" is a constraint, not a date; dateparser's
``search_dates`` is slow and matches fuzzily across languages, so "morgen" in "guten Morgen"
becomes a date). A few dozen explicit rules are fast, deterministic, testable one by one,
and carry the business rules below. dateparser is not used.

Rules worth knowing (each has tests in ``tests/unit/domain/test_when.py``):

- Clock hours without am/pm: 1–6 o'clock mean the afternoon (13–18 h, nobody books at
  3 am); 7–11 mean the morning, unless the day is today and the morning time has passed
  while the afternoon one has not ("heute um neun" at 10:00 → 21:00). A part of day
  ("abends um sieben", "at 7 in the evening") or am/pm decides instead. 12 is noon.
  German "halb drei" is 2:30 and so 14:30; British "half three" is 3:30.
- A clock time without a day is today if still ahead, else tomorrow.
- A bare weekday ("Dienstag", "on Tuesday") is its next occurrence after today, never
  today itself. "this Friday"/"diesen Freitag" is the occurrence in the current week, or
  the next one once it has passed; German "nächsten Freitag" is the next occurrence after
  today (as "kommenden Freitag"); English "next Friday" is Friday of next calendar week
  (weeks start on Monday). "nächste Woche Dienstag"/"Tuesday next week" is always next
  calendar week.
- Dates without a year are the next occurrence on or after today; "am 3."/"the 3rd" is
  the next 3rd of a month. Slashed dates are day/month ("12/03" = 12 March) like the
  dotted ones, because tenants are European; when the second number cannot be a month
  ("12/25") they are read as month/day.
- Parts of day: morning/Vormittag 08–12, lunchtime/Mittagszeit 12–14, afternoon/Nachmittag
  12–18, evening/Abend 17–22 (early/late variants split them).
- "in zwei Wochen"/"in 3 days" is that calendar day (grain ``day``), not a window;
  "in zwei Stunden" is an instant (grain ``minute``).

All wall-clock times are built as local dates and times and only then attached to the
time zone, so day arithmetic never drifts across DST changes; a time that does not exist
(02:30 on the last Sunday of March) moves forward by the gap, an ambiguous one (02:30 on
the last Sunday of October) is its first occurrence.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from voicedesk.domain.numbers import Language, fold, parse_number_word, parse_ordinal_word

Grain = Literal["minute", "hour", "part_of_day", "day", "week", "month"]
Meridiem = Literal["am", "pm"]

WEEKEND = frozenset({5, 6})
MORNING = (time(8), time(12))
LUNCHTIME = (time(12), time(14))
AFTERNOON = (time(12), time(18))
EVENING = (time(17), time(22))


@dataclass(frozen=True)
class When:
    """A caller's wish for a time, resolved in the tenant's time zone.

    ``start`` is the first instant that matches; ``end`` the exclusive end of the wished
    period, or ``None`` for an exact time on one day ("um 15 Uhr") and for open wishes
    ("after 3", "as soon as possible"). ``earliest``/``latest`` bound the time of day on
    every day of the period, ``excluded_weekdays`` holds ``date.weekday()`` numbers
    (0 = Monday). For ``grain`` ``hour``/``minute`` the time of ``start`` is the wished
    time of day.
    """

    start: datetime
    end: datetime | None = None
    grain: Grain = "day"
    earliest: time | None = None
    latest: time | None = None
    excluded_weekdays: frozenset[int] = frozenset()
    asap: bool = False

    @property
    def is_exact(self) -> bool:
        """True when the caller named a clock time ("um 15 Uhr", "at 3:30")."""
        return self.grain in ("hour", "minute")

    def to_json(self) -> dict[str, object]:
        """The JSON form used by ``voicedesk chat --jsonl`` (ISO-8601 with offset)."""
        return {
            "start": self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
            "grain": self.grain,
            "earliest": None if self.earliest is None else self.earliest.isoformat("minutes"),
            "latest": None if self.latest is None else self.latest.isoformat("minutes"),
            "excluded_weekdays": sorted(self.excluded_weekdays),
            "asap": self.asap,
        }


def _utc(moment: datetime) -> datetime:
    """Compare in UTC: Python ignores DST folds between datetimes that share a tzinfo."""
    return moment.astimezone(UTC)


def localize(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The aware instant of wall-clock ``at`` on ``day`` in ``tz`` (DST gaps move forward)."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC).astimezone(tz)


# ---------------------------------------------------------------------------------------
# Vocabulary (folded: lower case, umlauts as ae/oe/ue, ß as ss)

_WEEKDAYS: dict[Language, dict[str, int]] = {
    "de": {"montag": 0, "dienstag": 1, "mittwoch": 2, "donnerstag": 3, "freitag": 4,
           "samstag": 5, "sonnabend": 5, "sonntag": 6},
    "en": {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4,
           "saturday": 5, "sunday": 6},
}
_MONTHS: dict[Language, dict[str, int]] = {
    "de": {"januar": 1, "jaenner": 1, "jan": 1, "februar": 2, "feb": 2, "maerz": 3, "april": 4,
           "apr": 4, "mai": 5, "juni": 6, "juli": 7, "august": 8, "aug": 8, "september": 9,
           "sept": 9, "sep": 9, "oktober": 10, "okt": 10, "november": 11, "nov": 11,
           "dezember": 12, "dez": 12},
    "en": {"january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
           "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
           "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11,
           "nov": 11, "december": 12, "dec": 12},
}


def _alt(words: dict[str, int]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


_ASAP: dict[Language, re.Pattern[str]] = {
    "de": re.compile(
        r"\b(?:so\s*bald\s+wie\s+moeglich|so\s+schnell\s+wie\s+moeglich|baldmoeglichst|"
        r"schnellstmoeglich|moeglichst\s+(?:bald|schnell|frueh)|naechstmoeglich\w*|"
        r"fruehestmoeglich\w*|(?:den|der|dem|einen|ein)?\s*naechste[nrm]?\s+freie[nrm]?(?:\s+termin)?|"
        r"(?:den|der|dem|einen|ein)?\s*ersten?\s+freien?(?:\s+termin)?|egal\s+wann|wann\s+immer|"
        r"jederzeit|zeitnah|dringend|sofort)\b"
    ),
    "en": re.compile(
        r"\b(?:as\s+soon\s+as\s+(?:possible|you\s+can)|asap|a\s+s\s+a\s+p|"
        r"(?:the\s+)?(?:earliest|next|first|soonest)\s+(?:available|free|possible|opening|slot)"
        r"(?:\s+(?:slot|appointment|time|one))?|(?:the\s+)?soonest(?:\s+possible)?|"
        r"any\s*time|whenever|urgent(?:ly)?|right\s+away)\b"
    ),
}

# Parts of day: (pattern, (earliest, latest)); longer phrases first.
_PARTS: dict[Language, list[tuple[str, tuple[time, time]]]] = {
    "de": [
        (r"(?:am\s+)?(?:fruehen\s+morgen|frueh\s*morgens)", (time(8), time(10))),
        (r"(?:am\s+)?(?:spaeten\s+vormittag|spaet\s*vormittags)", (time(10), time(12))),
        (r"(?:am\s+)?(?:fruehen\s+nachmittag|frueh\s*nachmittags)", (time(12), time(15))),
        (r"(?:am\s+)?(?:spaeten\s+nachmittag|spaet\s*nachmittags)", (time(15), time(18))),
        (r"(?:am\s+|im\s+laufe\s+des\s+)?vormittags?|(?:am\s+)?morgens|am\s+morgen|"
         r"(?:in\s+der\s+)?frueh", MORNING),
        (r"(?:ueber\s+|zur\s+)?mittagszeit|ueber\s+(?:die\s+)?mittag(?:spause)?|"
         r"in\s+der\s+mittagspause", LUNCHTIME),
        (r"(?:am\s+|im\s+laufe\s+des\s+)?nachmittags?", AFTERNOON),
        (r"(?:am\s+)?abends?|gegen\s+abend", EVENING),
    ],
    "en": [
        (r"(?:in\s+the\s+)?early\s+(?:in\s+the\s+)?morning", (time(8), time(10))),
        (r"(?:in\s+the\s+)?late\s+(?:in\s+the\s+)?morning", (time(10), time(12))),
        (r"(?:in\s+the\s+)?early\s+(?:in\s+the\s+)?afternoon", (time(12), time(15))),
        (r"(?:in\s+the\s+)?late\s+(?:in\s+the\s+)?afternoon", (time(15), time(18))),
        (r"(?:in\s+the\s+)?mornings?|a\.?m\.?\s+sometime", MORNING),
        (r"(?:at\s+|around\s+|over\s+)?lunch\s*time|(?:around|over)\s+lunch", LUNCHTIME),
        (r"(?:in\s+the\s+)?afternoons?", AFTERNOON),
        (r"(?:in\s+the\s+)?evenings?|at\s+night|tonight", EVENING),
    ],
}

# Negated forms of the other list ("nicht nach", "no later than") must not match here.
_EARLIEST_WORDS: dict[Language, str] = {
    "de": r"nicht\s+vor|fruehestens(?:\s+(?:um|ab))?|ab|(?<!nicht )nach|(?<!nicht )spaeter\s+als|"
          r"irgendwann\s+nach",
    "en": r"not\s+before|no\s+earlier\s+than|(?<!not )after|from|(?<!no )later\s+than|"
          r"any\s*time\s+after|starting(?:\s+at|\s+from)?",
}
_LATEST_WORDS: dict[Language, str] = {
    "de": r"nicht\s+nach|spaetestens(?:\s+(?:um|bis))?|bis\s+spaetestens|bis|vor|frueher\s+als",
    "en": r"not\s+after|no\s+later\s+than|before|until|till|by|earlier\s+than",
}
_RANGE: dict[Language, tuple[str, str]] = {
    "de": (r"zwischen|von", r"und|bis"),
    "en": (r"between|from", r"and|to|until|till"),
}
_CLOCK_PREFIX: dict[Language, str] = {
    "de": r"(?:so\s+)?(?:um|gegen|ca|circa|etwa|ungefaehr)",
    "en": r"(?:at|around|about)(?:\s+about|\s+around)?",
}

_H = r"(\d{1,2})"


@dataclass
class _Clock:
    hour: int
    minute: int
    grain: Grain
    meridiem: Meridiem | None = None
    strict: bool = False  # written as a 24-hour time ("08:30", "15 Uhr")


_ClockForm = tuple[re.Pattern[str], Callable[[re.Match[str]], _Clock | None], bool]


def _clock_forms(language: Language) -> list[_ClockForm]:
    """Anchored clock patterns, tried in order at one position."""

    def hm(h: int, m: int, grain: Grain = "minute") -> _Clock | None:
        if not 0 <= h <= 24 or not 0 <= m <= 59:
            return None
        return _Clock(h % 24 if h != 24 else 0, m, grain)

    def before(h: int, m: int) -> _Clock | None:  # m minutes before the full hour h
        return hm((h - 1) % 12 if h != 12 else 11, 60 - m)

    def strict(c: _Clock | None, meridiem: str | None = None, written: str = "") -> _Clock | None:
        if c is not None:
            c.strict = c.hour >= 13 or c.hour == 0 or written.startswith("0")
            if meridiem in ("am", "pm"):
                c.meridiem = "am" if meridiem == "am" else "pm"
        return c

    g = int
    if language == "de":
        forms: list[tuple[str, Callable[[re.Match[str]], _Clock | None]]] = [
            (rf"(?:3\s*viertel|dreiviertel)\s+{_H}", lambda m: before(g(m[1]), 15)),
            (rf"viertel\s+nach\s+{_H}", lambda m: hm(g(m[1]), 15)),
            (rf"viertel\s+vor\s+{_H}", lambda m: before(g(m[1]), 15)),
            (rf"viertel\s+{_H}(?![.:\d])", lambda m: hm(g(m[1]) - 1, 15)),
            (rf"{_H}\s+(?:minuten\s+)?nach\s+halb\s+{_H}",
             lambda m: hm(g(m[2]) - 1, 30 + g(m[1])) if g(m[1]) < 30 else None),
            (rf"{_H}\s+(?:minuten\s+)?vor\s+halb\s+{_H}",
             lambda m: hm(g(m[2]) - 1, 30 - g(m[1])) if 0 < g(m[1]) < 30 else None),
            (rf"halb\s+{_H}", lambda m: hm(g(m[1]) - 1, 30) if g(m[1]) > 0 else None),
            (rf"{_H}\s+(?:minuten\s+)?nach\s+{_H}(?!\s*uhr|[.:]?\d)",
             lambda m: hm(g(m[2]), g(m[1])) if 0 < g(m[1]) < 30 else None),
            (rf"{_H}\s+(?:minuten\s+)?vor\s+{_H}(?!\s*uhr|[.:]?\d)",
             lambda m: before(g(m[2]), g(m[1])) if 0 < g(m[1]) < 30 else None),
            (rf"{_H}[:.](\d{{2}})(?:\s*uhr)?(?!\.?\d)", lambda m: strict(hm(g(m[1]), g(m[2])), None, m[1])),
            (rf"{_H}\s*uhr\s+(\d{{1,2}})(?![.:\d])", lambda m: strict(hm(g(m[1]), g(m[2])))),
            (rf"{_H}\s*uhr", lambda m: strict(hm(g(m[1]), 0, "hour"))),
            (r"(?:12\s+)?mittags?|zu\s+mittag", lambda m: _Clock(12, 0, "hour", strict=True)),
            (r"mitternacht", lambda m: _Clock(0, 0, "hour", strict=True)),
        ]
    else:
        forms = [
            (rf"(?:a\s+)?quarter\s+(?:past|after)\s+{_H}", lambda m: hm(g(m[1]), 15)),
            (rf"(?:a\s+)?quarter\s+(?:to|before|of|til)\s+{_H}", lambda m: before(g(m[1]), 15)),
            (rf"half\s+past\s+{_H}", lambda m: hm(g(m[1]), 30)),
            (rf"half\s+{_H}(?![.:\d])", lambda m: hm(g(m[1]), 30)),
            (rf"{_H}\s+(?:minutes\s+)?past\s+{_H}",
             lambda m: hm(g(m[2]), g(m[1])) if 0 < g(m[1]) < 30 else None),
            (rf"{_H}\s+(?:minutes\s+)?(?:to|before|of|til)\s+{_H}(?![.:\d])",
             lambda m: before(g(m[2]), g(m[1])) if 0 < g(m[1]) < 30 else None),
            (rf"{_H}[:.](\d{{2}})\s*(am|pm)?\b", lambda m: strict(hm(g(m[1]), g(m[2])), m[3], m[1])),
            (rf"{_H}\s*(am|pm)\b", lambda m: strict(hm(g(m[1]), 0, "hour"), m[2])),
            (rf"{_H}\s+oclock(?:\s+(am|pm)\b)?", lambda m: strict(hm(g(m[1]), 0, "hour"), m[2])),
            (rf"{_H}\s+(\d{{2}})\s*(am|pm)\b", lambda m: strict(hm(g(m[1]), g(m[2])), m[3])),
            (rf"{_H}\s+(\d{{2}})(?![.:\d])",
             lambda m: hm(g(m[1]), g(m[2])) if g(m[1]) <= 12 and g(m[2]) >= 10 else None),
            (r"(?:12\s+)?(?:noon|midday)", lambda m: _Clock(12, 0, "hour", strict=True)),
            (r"midnight", lambda m: _Clock(0, 0, "hour", strict=True)),
        ]
    # "N nach/vor/past/to H" forms; not tried where "to"/"bis" would start a range end
    return [(re.compile(p), f, p.startswith(_H + r"\s+(?:minute")) for p, f in forms]


_BARE_HOUR = re.compile(rf"{_H}(?![:\d]|\.\d|\s*(?:uhr|oclock|am|pm)\b)\.?")
_CLOCKS = {lang: _clock_forms(lang) for lang in ("de", "en")}


def _match_clock(
    text: str, pos: int, language: Language, *, bare: bool, relative: bool = True
) -> tuple[_Clock, int] | None:
    """A clock expression starting exactly at ``pos``; bare numbers only if ``bare``."""
    for pattern, build, is_relative in _CLOCKS[language]:
        if is_relative and not relative:
            continue
        m = pattern.match(text, pos)
        if m:
            clock = build(m)
            if clock is not None:
                return clock, m.end()
    if bare:
        m = _BARE_HOUR.match(text, pos)
        if m and 0 <= int(m[1]) <= 24:
            h = int(m[1])
            return _Clock(h % 24, 0, "hour", strict=h >= 13 or h in (0, 24)), m.end()
    return None


# ---------------------------------------------------------------------------------------
# Parsing state


@dataclass
class _State:
    text: str
    language: Language
    today: date
    now: datetime
    days: tuple[date, date, Grain] | None = None  # first day, end day (exclusive), grain
    today_named: bool = False
    clock: _Clock | None = None
    part: tuple[time, time] | None = None
    part_meridiem: Meridiem | None = None
    earliest: time | None = None
    latest: time | None = None
    excluded: set[int] = field(default_factory=set)
    asap: bool = False
    instant: datetime | None = None
    matched: bool = False

    def take(self, pattern: re.Pattern[str], handle: Callable[[re.Match[str]], bool]) -> None:
        """Run ``handle`` on each match; consume the text of those it accepts."""
        pos = 0
        while True:
            m = pattern.search(self.text, pos)
            if m is None:
                return
            if m.end() == m.start() or not handle(m):
                pos = m.start() + 1
                continue
            self.text = self.text[: m.start()] + " " * (m.end() - m.start()) + self.text[m.end() :]
            self.matched = True
            pos = m.end()

    def set_day(self, day: date) -> bool:
        if self.days is not None and self.days[2] == "day":
            return False
        self.days = (day, day + timedelta(days=1), "day")
        return True

    def set_window(self, first: date, end: date, grain: Grain) -> bool:
        if self.days is not None:
            return False
        self.days = (first, end, grain)
        return True


def parse_when(text: str, *, now: datetime, language: Language, tz: ZoneInfo) -> When | None:
    """Understand a spoken time wish; ``None`` if ``text`` holds none.

    ``now`` must be aware; results are in ``tz``. See the module docstring for the rules.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("parse_when needs an aware 'now'; pass datetime.now(tz)")
    now_local = now.astimezone(tz)
    st = _State(_normalize(text, language), language, now_local.date(), now_local)
    st.take(_ASAP[language], lambda m: _set(st, "asap", True))
    st.text = _numbers_to_digits(st.text, language)
    _parse_relative_instant(st)
    _parse_exclusions(st)
    _parse_dates(st)
    _parse_relative_days(st)
    _parse_weekdays(st)
    _parse_windows(st)
    _parse_parts(st)
    _parse_time_constraints(st)
    _parse_clock(st)
    if not st.matched:
        return None
    return _build(st, tz)


def _set(st: _State, name: str, value: object) -> bool:
    setattr(st, name, value)
    return True


# ---------------------------------------------------------------------------------------
# Normalisation

_GREETING = re.compile(
    r"\b(?:guten|schoenen)\s+(?:morgen|abend|tag)\b|\bgood\s+(?:morning|afternoon|evening)\b"
)


def _normalize(text: str, language: Language) -> str:
    t = fold(text)
    t = _GREETING.sub(" ", t)
    if language == "en":
        t = re.sub(r"\b([ap])\.\s?m\b\.?", r"\1m", t)
        t = t.replace("o'clock", "oclock").replace("o clock", "oclock")
        t = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", t)
        t = re.sub(r"(\d)(?:st|nd|rd|th)\b", r"\1.", t)
    else:
        t = re.sub(r"(\d)(?:te[nrsm]?|ste[nrsm]?)\b", r"\1.", t)
        t = re.sub(r"\b(\d{1,2})\s*h\b", r"\1 uhr", t)
        t = re.sub(r"(?<!\d)\.", " ", t)
        days = _alt(_WEEKDAYS["de"])
        t = re.sub(rf"\b({days})(vormittag|nachmittag|abend|mittag|frueh)", r"\1 \2", t)
        t = re.sub(rf"\b({days})\s*morgen\b", r"\1 morgens", t)
    t = re.sub(r"[!?;,\"()\[\]']", " ", t)
    t = t.replace("-", " - ")
    t = re.sub(r"(\d)\s*-\s*(\d)", r"\1-\2", t)
    between, conj = ("zwischen", "und") if language == "de" else ("between", "and")
    t = re.sub(r"\b(\d{1,2})-(\d{1,2})(?=\s*(?:uhr|am|pm|oclock)\b)", rf"{between} \1 {conj} \2", t)
    return " " + re.sub(r"\s+", " ", t).strip() + " "


_EN_HYPHEN = re.compile(r"\b(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)\s+-\s+(\w+)")
_DE_ONE = re.compile(r"\s*(?:woche|tag|monat|stunde|halbe)")


def _numbers_to_digits(text: str, language: Language) -> str:
    """Spell number words as digits, ordinals with a trailing dot ("dritten" → "3.")."""
    if language == "en":
        text = _EN_HYPHEN.sub(r"\1-\2", text)
        text = re.sub(
            r"\b(twenty|thirty|forty|fifty)\s+(one|two|three|four|five|six|seven|eight|nine|first|"
            r"second|third|fourth|fifth|sixth|seventh|eighth|ninth)\b",
            r"\1-\2",
            text,
        )

    def repl(m: re.Match[str]) -> str:
        word = m.group()
        if language == "de" and word in ("ein", "eine", "einen", "einem", "eines", "einer"):
            return "1" if _DE_ONE.match(m.string, m.end()) else word
        if language == "en" and word == "second" and not _ordinal_context(m):
            return word
        ordinal = parse_ordinal_word(word, language)
        if ordinal is not None:
            return f"{ordinal}."
        value = parse_number_word(word, language)
        return word if value is None else str(value)

    return re.sub(r"[a-z]+(?:-[a-z]+)?", repl, text)


def _ordinal_context(m: re.Match[str]) -> bool:
    """English "second" is a date only after "the" or before "of"/a month."""
    before = m.string[: m.start()].rstrip()
    after = m.string[m.end() :].lstrip()
    return before.endswith("the") or after.startswith("of ") or bool(
        re.match(_alt(_MONTHS["en"]) + r"\b", after)
    )


# ---------------------------------------------------------------------------------------
# Rules


def _parse_relative_instant(st: _State) -> None:
    if st.language == "de":
        pat = re.compile(r"\bin\s+(?:(\d+)\s+(stunden?|minuten?)|(?:1\s+)?(halben?)\s+stunde|"
                         r"(1)\s+(?:und\s+)?1\s+halb\s+stunden?)\b")
    else:
        pat = re.compile(r"\bin\s+(?:(\d+)\s+(hours?|minutes?|mins?)|(half)\s+an\s+hour|"
                         r"(?:an?|1)\s+(hour)\s+and\s+a\s+half|(?:an?|1)\s+(hour))\b")

    def handle(m: re.Match[str]) -> bool:
        if m[1]:
            n = int(m[1])
            delta = timedelta(hours=n) if m[2].startswith(("stunde", "hour")) else timedelta(minutes=n)
        elif m[3]:
            delta = timedelta(minutes=30)
        elif m[4]:
            delta = timedelta(minutes=90)
        else:
            delta = timedelta(hours=1)
        st.instant = (st.now.astimezone(UTC) + delta).astimezone(st.now.tzinfo)
        return True

    st.take(pat, handle)


def _weekday_list(language: Language) -> str:
    day = rf"(?:{_alt(_WEEKDAYS[language])})s?"
    joiner = r"\s*(?:und|oder|,|&)?\s*(?:am\s+|an\s+|nicht\s+)?" if language == "de" else \
        r"\s*(?:and|or|nor|,|&)?\s*(?:on\s+)?"
    return rf"{day}(?:{joiner}{day})*"


def _weekdays_in(text: str, language: Language) -> set[int]:
    return {_WEEKDAYS[language][w] for w in re.findall(_alt(_WEEKDAYS[language]), text)}


def _parse_exclusions(st: _State) -> None:
    lang = st.language
    if lang == "de":
        neg = (r"(?:aber\s+|bloss\s+|nur\s+|bitte\s+)?(?:nicht|ausser|kein(?:e|en)?|ohne)"
               r"(?:\s+(?:am|an|den|dem|einem|einen|der))?")
        weekend = r"(?:nicht|ausser|kein(?:e|en)?|ohne)\s+(?:am\s+)?wochenende"
        workdays = r"(?:nur\s+)?(?:werktags|unter\s+der\s+woche|an\s+werktagen|wochentags)(?:\s+nur)?"
        not_morning = r"nicht\s+(?:am\s+)?(?:vormittags?|morgens)"
        not_afternoon = r"nicht\s+(?:am\s+)?nachmittags?"
        not_evening = r"nicht\s+(?:am\s+)?abends?"
    else:
        neg = (r"(?:but\s+|just\s+)?(?:not|except|excluding|other\s+than|no|any\s+day\s+but|"
               r"anything\s+but)(?:\s+(?:on\s+a|on|a))?")
        weekend = r"(?:not|except|no)\s+(?:on\s+)?(?:the\s+|a\s+)?weekends?"
        workdays = r"(?:only\s+)?(?:on\s+)?(?:weekdays|workdays|during\s+the\s+week)(?:\s+only)?"
        not_morning = r"not\s+(?:in\s+the\s+)?mornings?|no\s+mornings"
        not_afternoon = r"not\s+(?:in\s+the\s+)?afternoons?|no\s+afternoons"
        not_evening = r"not\s+(?:in\s+the\s+)?evenings?|no\s+evenings"

    def excl(m: re.Match[str]) -> bool:
        st.excluded |= _weekdays_in(m[1], lang)
        return True

    st.take(re.compile(rf"\b{neg}\s+({_weekday_list(lang)})\b"), excl)
    st.take(re.compile(rf"\b(?:{weekend}|{workdays})\b"), lambda m: _exclude(st, WEEKEND))
    st.take(re.compile(rf"\b(?:{not_morning})\b"), lambda m: _raise_earliest(st, time(12)))
    st.take(re.compile(rf"\b(?:{not_afternoon})\b"), lambda m: _lower_latest(st, time(12)))
    st.take(re.compile(rf"\b(?:{not_evening})\b"), lambda m: _lower_latest(st, time(17)))


def _exclude(st: _State, weekdays: frozenset[int]) -> bool:
    st.excluded |= weekdays
    return True


def _raise_earliest(st: _State, at: time) -> bool:
    st.earliest = at if st.earliest is None else max(st.earliest, at)
    return True


def _lower_latest(st: _State, at: time) -> bool:
    st.latest = at if st.latest is None else min(st.latest, at)
    return True


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _next_date(st: _State, month: int, day: int, year: int | None) -> date | None:
    """The date with that day and month: in ``year``, or the next one on or after today."""
    if year is not None:
        if year < 100:
            year += 2000
        return _valid(year, month, day)
    for y in (st.today.year, st.today.year + 1, st.today.year + 2, st.today.year + 3, st.today.year + 4):
        d = _valid(y, month, day)
        if d is not None and d >= st.today:
            return d
    return None


def _next_day_of_month(st: _State, day: int) -> date | None:
    y, m = st.today.year, st.today.month
    for _ in range(13):
        d = _valid(y, m, day)
        if d is not None and d >= st.today:
            return d
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return None


def _parse_dates(st: _State) -> None:
    lang = st.language
    months = _alt(_MONTHS[lang])
    year = r"(?:\s+(\d{4}))?"

    def by_date(d: date | None) -> bool:
        return d is not None and st.set_day(d)

    def month_of(name: str) -> int:
        return _MONTHS[lang][name]

    st.take(re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"),
            lambda m: by_date(_valid(int(m[1]), int(m[2]), int(m[3]))))
    st.take(re.compile(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})?(?!\d)"),
            lambda m: by_date(_next_date(st, int(m[2]), int(m[1]), int(m[3]) if m[3] else None)))

    def slashed(m: re.Match[str]) -> bool:
        a, b = int(m[1]), int(m[2])
        day, month = (b, a) if b > 12 >= a else (a, b)
        return by_date(_next_date(st, month, day, int(m[3]) if m[3] else None))

    st.take(re.compile(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?\b"), slashed)
    if lang == "de":
        dm = rf"\b(?:(?:am|den|der|dem)\s+)?(\d{{1,2}})\.?\s+({months})\b\.?{year}"
        st.take(re.compile(dm), lambda m: by_date(_next_date(st, month_of(m[2]), int(m[1]), _int(m[3]))))
        md = rf"\b({months})\s+(?:den\s+)?(\d{{1,2}})\.(?:\s+(\d{{4}}))?"
        st.take(re.compile(md), lambda m: by_date(_next_date(st, month_of(m[1]), int(m[2]), _int(m[3]))))
        dom = (r"\b(?:am|den|dem|der|zum)\s+(\d{1,2})"
               r"(?:\.|(?!\s*(?:uhr|tage?n?|wochen?|monate?n?)\b)(?![\d:.]))")
    else:
        dm = rf"\b(?:(?:on\s+)?the\s+)?(\d{{1,2}})\.?\s+(?:of\s+)?({months})\b{year}"
        st.take(re.compile(dm), lambda m: by_date(_next_date(st, month_of(m[2]), int(m[1]), _int(m[3]))))
        md = rf"\b({months})\s+(?:the\s+)?(\d{{1,2}})\.?(?![\d:])(?:\s+(\d{{4}}))?"
        st.take(re.compile(md), lambda m: by_date(_next_date(st, month_of(m[1]), int(m[2]), _int(m[3]))))
        dom = r"\b(?:on\s+)?the\s+(\d{1,2})\.|\b(?:on\s+)(\d{1,2})\.(?=\s|$)"
    st.take(re.compile(dom), lambda m: by_date(_next_day_of_month(st, int(m[1] or m[2]))))


def _int(text: str | None) -> int | None:
    return None if text is None else int(text)


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _add_months(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _parse_relative_days(st: _State) -> None:
    lang = st.language
    today = st.today

    def day(offset: int, part: tuple[time, time] | None = None) -> Callable[[re.Match[str]], bool]:
        def handle(m: re.Match[str]) -> bool:
            if not st.set_day(today + timedelta(days=offset)):
                return False
            st.today_named = offset == 0
            if part is not None:
                st.part = part
            return True

        return handle

    def shifted(m: re.Match[str]) -> bool:
        base = {"heute": 0, "today": 0, "morgen": 1, "tomorrow": 1}.get(m[1] or "", 0)
        n = int(m[2]) if m[2] else 1
        unit = m[3]
        if unit.startswith(("tag", "day")):
            target = today + timedelta(days=base + n)
        elif unit.startswith(("woche", "week")):
            target = today + timedelta(days=base + 7 * n)
        elif unit.startswith("fortnight"):
            target = today + timedelta(days=base + 14 * n)
        else:
            target = _add_months(today + timedelta(days=base), n)
        return st.set_day(target)

    if lang == "de":
        st.take(re.compile(r"\b(?:(heute|morgen)\s+)?in\s+(?:(\d+)\s+)?(tagen|tag|wochen|woche|monaten|monat)\b"),
                shifted)
        st.take(re.compile(r"\b(heute|morgen)\s+(?:in\s+)?(?:1\s+)?(woche)\b"),
                lambda m: st.set_day(today + timedelta(days=(1 if m[1] == "morgen" else 0) + 7)))
        st.take(re.compile(r"\bueber\s*uebermorgen\b"), day(3))
        st.take(re.compile(r"\buebermorgen\b"), day(2))
        st.take(re.compile(r"\bheute\s+(?:morgen|frueh)\b"), day(0, MORNING))
        st.take(re.compile(r"\bmorgen\s+(?:morgen|frueh)\b"), day(1, MORNING))
        st.take(re.compile(r"\bheute\s+nacht\b"), day(0, EVENING))
        st.take(re.compile(r"\bheute\b"), day(0))
        st.take(re.compile(r"(?<!\bam )\bmorgen\b"), day(1))
        st.take(re.compile(r"\bgestern\b"), day(-1))
    else:
        st.take(re.compile(
            r"\b(?:(?:(today|tomorrow)\s+)?in\s+(?:(\d+)|an?)?\s*(days?|weeks?|fortnight|months?)(?:\s+time)?|"
            r"(\d+)\s+(days?|weeks?|months?)\s+from\s+(?:now|today))\b"),
            lambda m: shifted(m) if m[3] else st.set_day(
                _add_months(today, int(m[4])) if m[5].startswith("month")
                else today + timedelta(days=int(m[4]) * (7 if m[5].startswith("week") else 1))))
        st.take(re.compile(r"\b(?:an?|1)\s+week\s+(?:from\s+)?(today|tomorrow)\b"),
                lambda m: st.set_day(today + timedelta(days=(1 if m[1] == "tomorrow" else 0) + 7)))
        st.take(re.compile(r"\b(?:the\s+)?day\s+after\s+tomorrow\b|\bovermorrow\b"), day(2))
        st.take(re.compile(r"\btonight\b|\bthis\s+evening\b"), day(0, EVENING))
        st.take(re.compile(r"\bthis\s+morning\b"), day(0, MORNING))
        st.take(re.compile(r"\bthis\s+afternoon\b"), day(0, AFTERNOON))
        st.take(re.compile(r"\b(?:later\s+)?today\b|\blater\s+on\b"), day(0))
        st.take(re.compile(r"\btomorrow\b"), day(1))
        st.take(re.compile(r"\byesterday\b"), day(-1))


def _parse_weekdays(st: _State) -> None:
    lang = st.language
    days = _alt(_WEEKDAYS[lang])
    today = st.today
    this_monday = _monday(today)

    def in_week(weeks_ahead: int, name: str) -> bool:
        return st.set_day(this_monday + timedelta(days=7 * weeks_ahead + _WEEKDAYS[lang][name]))

    def upcoming(name: str, *, include_today: bool, skip: int = 0) -> bool:
        delta = (_WEEKDAYS[lang][name] - today.weekday()) % 7
        if delta == 0 and not include_today:
            delta = 7
        return st.set_day(today + timedelta(days=delta + 7 * skip))

    if lang == "de":
        week = {"diese": 0, "dieser": 0, "naechste": 1, "naechster": 1, "naechsten": 1, "kommende": 1,
                "kommender": 1, "kommenden": 1, "uebernaechste": 2, "uebernaechster": 2,
                "uebernaechsten": 2}
        weeks = _alt(week)
        st.take(re.compile(rf"\b(?:in\s+der\s+|)({weeks})\s+woche\s+(?:am\s+)?({days})s?\b"),
                lambda m: in_week(week[m[1]], m[2]))
        st.take(re.compile(rf"\b(?:am\s+)?({days})s?\s+(?:in\s+der\s+)?({weeks})\s+woche\b"),
                lambda m: in_week(week[m[2]], m[1]))
        st.take(re.compile(rf"\b(?:am\s+)?(diesen|kommenden|naechsten|uebernaechsten)\s+({days})\b"),
                lambda m: upcoming(m[2], include_today=m[1] == "diesen",
                                   skip=1 if m[1] == "uebernaechsten" else 0))
        st.take(re.compile(rf"\b({days})s?\b"), lambda m: upcoming(m[1], include_today=False))
    else:
        st.take(re.compile(rf"\b(?:on\s+)?(?:the\s+)?(next|this|coming)\s+week\s+(?:on\s+)?({days})s?\b"),
                lambda m: in_week(1 if m[1] in ("next", "coming") else 0, m[2]))
        st.take(re.compile(rf"\b(?:on\s+)?({days})s?\s+(?:of\s+)?(next|this|the\s+following|the\s+coming)\s+week\b"),
                lambda m: in_week(0 if m[2] == "this" else 1, m[1]))
        st.take(re.compile(rf"\b(?:on\s+)?({days})s?\s+(?:of\s+)?the\s+week\s+after\s+next\b"),
                lambda m: in_week(2, m[1]))
        st.take(re.compile(rf"\b(?:on\s+)?(?:the\s+)?({days})\s+after\s+next\b"),
                lambda m: upcoming(m[1], include_today=False, skip=1))
        st.take(re.compile(rf"\b(?:on\s+)?(?:this|this\s+coming|the\s+coming|coming)\s+({days})\b"),
                lambda m: upcoming(m[1], include_today=True))
        st.take(re.compile(rf"\b(?:on\s+)?next\s+({days})\b"), lambda m: in_week(1, m[1]))
        st.take(re.compile(rf"\b({days})s?\b"), lambda m: upcoming(m[1], include_today=False))


def _parse_windows(st: _State) -> None:
    lang = st.language
    today = st.today
    monday = _monday(today)
    first_of_month = today.replace(day=1)

    def week(n: int) -> Callable[[re.Match[str]], bool]:
        def handle(m: re.Match[str]) -> bool:
            start = monday + timedelta(days=7 * n)
            return st.set_window(max(start, today), start + timedelta(days=7), "week")

        return handle

    def weekend(n: int) -> Callable[[re.Match[str]], bool]:
        def handle(m: re.Match[str]) -> bool:
            sat = monday + timedelta(days=7 * n + 5)  # never before today: weeks start on Monday
            return st.set_window(max(sat, today), sat + timedelta(days=2), "week")

        return handle

    def month(n: int) -> Callable[[re.Match[str]], bool]:
        def handle(m: re.Match[str]) -> bool:
            start = _add_months(first_of_month, n)
            return st.set_window(max(start, today), _add_months(start, 1), "month")

        return handle

    def named_month(m: re.Match[str]) -> bool:
        number = _MONTHS[lang][m[1]]
        year = today.year if number >= today.month else today.year + 1
        start = date(year, number, 1)
        return st.set_window(max(start, today), _add_months(start, 1), "month")

    months = _alt(_MONTHS[lang])
    if lang == "de":
        st.take(re.compile(r"\b(?:in\s+der\s+|)(?:diese[rn]?|laufende[nr]?)\s+woche\b"), week(0))
        st.take(re.compile(r"\b(?:in\s+der\s+|)uebernaechste[nr]?\s+woche\b"), week(2))
        st.take(re.compile(r"\b(?:in\s+der\s+|)(?:naechste[nr]?|kommende[nr]?)\s+woche\b"), week(1))
        st.take(re.compile(r"\b(?:am\s+|an\s+diesem\s+|dieses\s+)wochenende\b"), weekend(0))
        st.take(re.compile(r"\b(?:am\s+)?(?:naechsten|kommenden)\s+wochenende\b"), weekend(1))
        st.take(re.compile(r"\b(?:im\s+|in\s+diesem\s+|diesen\s+)(?:laufenden\s+)?monat\b"), month(0))
        st.take(re.compile(r"\b(?:im\s+)?(?:naechsten|kommenden)\s+monat\b"), month(1))
        st.take(re.compile(rf"\b(?:im|ab|anfang|mitte|ende)\s+({months})\b"), named_month)
    else:
        st.take(re.compile(r"\b(?:later\s+)?this\s+week\b"), week(0))
        st.take(re.compile(r"\b(?:the\s+)?week\s+after\s+next\b"), week(2))
        st.take(re.compile(r"\b(?:next|the\s+coming|the\s+following|coming)\s+week\b"), week(1))
        st.take(re.compile(r"\b(?:(?:on\s+|at\s+)?this|(?:on|at|over)\s+the)\s+weekend\b"), weekend(0))
        st.take(re.compile(r"\bnext\s+weekend\b"), weekend(1))
        st.take(re.compile(r"\bthis\s+month\b"), month(0))
        st.take(re.compile(r"\bnext\s+month\b"), month(1))
        st.take(re.compile(rf"\b(?:in|during|(?:in\s+)?(?:early|mid|late))\s+({months})\b"), named_month)


_CLOCK_BEFORE = re.compile(r"(?:viertel|quarter|\b\d{1,2})\s*$")


def _parse_time_constraints(st: _State) -> None:
    lang = st.language
    prefix = _CLOCK_PREFIX[lang]

    def clock_at(pos: int, *, relative: bool = True) -> tuple[_Clock, int] | None:
        m = re.compile(rf"\s*(?:{prefix}\s+)?").match(st.text, pos)
        start = m.end() if m else pos
        return _match_clock(st.text, start, lang, bare=True, relative=relative)

    def take_with_clock(
        words: str, apply: Callable[[_Clock, _Clock | None], None], *, second: str | None
    ) -> None:

        pat = re.compile(rf"\b(?:{words})\b")
        pos = 0
        while True:
            m = pat.search(st.text, pos)
            if m is None:
                return
            first = clock_at(m.end(), relative=second is None)
            if first is None or _CLOCK_BEFORE.search(st.text, 0, m.start()):
                pos = m.end()
                continue
            end = first[1]
            other: _Clock | None = None
            if second is not None:
                m2 = re.compile(rf"\s*(?:{second})\b").match(st.text, end)
                nxt = clock_at(m2.end()) if m2 else None
                if nxt is None:
                    pos = m.end()
                    continue
                other, end = nxt
            apply(first[0], other)
            st.text = st.text[: m.start()] + " " * (end - m.start()) + st.text[end:]
            st.matched = True
            pos = end

    def as_range(a: _Clock, b: _Clock | None) -> None:
        b = b or a
        if a.meridiem is None and b.meridiem is not None and not a.strict:
            a.meridiem = b.meridiem
        lo = _resolve(a, st.part_meridiem)
        hi = _resolve(b, st.part_meridiem)
        if hi <= lo and not b.strict and hi.hour < 12:
            hi = time(hi.hour + 12, hi.minute)
        _raise_earliest(st, lo)
        _lower_latest(st, hi)

    first, second = _RANGE[lang]
    take_with_clock(first, as_range, second=second)
    st.take(re.compile(r"\b(?:nach\s+(?:dem\s+mittagessen|der\s+mittagspause)|after\s+lunch)\b"),
            lambda m: _raise_earliest(st, time(13)))
    st.take(re.compile(r"\b(?:vor\s+(?:dem\s+mittagessen|der\s+mittagspause)|before\s+lunch)\b"),
            lambda m: _lower_latest(st, time(12)))

    def after(a: _Clock, _: _Clock | None) -> None:
        _raise_earliest(st, _resolve(a, st.part_meridiem))

    def before(a: _Clock, _: _Clock | None) -> None:
        _lower_latest(st, _resolve(a, st.part_meridiem))

    take_with_clock(_EARLIEST_WORDS[lang], after, second=None)
    take_with_clock(_LATEST_WORDS[lang], before, second=None)


def _resolve(c: _Clock, hint: Meridiem | None) -> time:
    """The time of day of a clock expression, by the business-hours rule (module docstring)."""
    h = c.hour
    meridiem = c.meridiem or (None if c.strict else hint)
    if meridiem == "pm" and h < 12:
        h += 12
    elif meridiem == "am" and h == 12 and c.meridiem == "am":
        h = 0
    elif meridiem is None and not c.strict and 1 <= h <= 6:
        h += 12
    return time(h, c.minute)


def _parse_clock(st: _State) -> None:
    lang = st.language
    prefix = re.compile(rf"{_CLOCK_PREFIX[lang]}\s+")
    for token in list(re.finditer(r"(?<= )\S", st.text)):
        at = token.start()
        p = prefix.match(st.text, at)
        found = _match_clock(st.text, p.end(), lang, bare=True) if p else None
        if found is None:
            found = _match_clock(st.text, at, lang, bare=False)
        if found is None:
            continue
        clock, end = found
        if end < len(st.text) and st.text[end].isalnum():
            continue
        st.clock = clock
        st.text = st.text[:at] + " " * (end - at) + st.text[end:]
        st.matched = True
        return


def _parse_parts(st: _State) -> None:
    for pattern, span in _PARTS[st.language]:

        def handle(m: re.Match[str], span: tuple[time, time] = span) -> bool:
            if st.part is None:
                st.part = span
            return True

        st.take(re.compile(rf"\b(?:{pattern})\b"), handle)
    if st.part is not None:
        st.part_meridiem = "am" if st.part[1] <= time(12) else "pm"


# ---------------------------------------------------------------------------------------
# Building the result


def _build(st: _State, tz: ZoneInfo) -> When:
    now = st.now
    excluded = frozenset(st.excluded)
    earliest, latest = st.earliest, st.latest
    if st.part is not None and st.clock is None:
        earliest = st.part[0] if earliest is None else max(earliest, st.part[0])
        latest = st.part[1] if latest is None else min(latest, st.part[1])

    if st.instant is not None:
        return When(start=st.instant, grain="minute", earliest=earliest, latest=latest,
                    excluded_weekdays=excluded, asap=st.asap)

    if st.clock is not None:
        hint = st.part_meridiem
        at = _resolve(st.clock, hint)
        ambiguous = (st.clock.meridiem is None and hint is None and not st.clock.strict
                     and 7 <= st.clock.hour <= 11)
        if st.days is None:
            day = st.today
            while _utc(localize(day, at, tz)) <= _utc(now) or day.weekday() in excluded:
                day += timedelta(days=1)
            return When(start=localize(day, at, tz), grain=st.clock.grain, earliest=earliest,
                        latest=latest, excluded_weekdays=excluded, asap=st.asap)
        first, end_day, grain = st.days
        if ambiguous and first == st.today and st.today_named and _utc(localize(first, at, tz)) <= _utc(now):
            at = time(at.hour + 12, at.minute)
        end = None if grain == "day" else localize(end_day, time(0), tz)
        return When(start=localize(first, at, tz), end=end, grain=st.clock.grain, earliest=earliest,
                    latest=latest, excluded_weekdays=excluded, asap=st.asap)

    constrained = earliest is not None or latest is not None
    if st.days is None:
        start = _first_match(now, earliest, latest, excluded, tz)
        return When(start=start, grain="part_of_day" if constrained else "day", earliest=earliest,
                    latest=latest, excluded_weekdays=excluded, asap=st.asap)

    first, end_day, grain = st.days
    if grain == "day":
        start = localize(first, earliest or time(0), tz)
        end = localize(first, latest, tz) if latest is not None else localize(end_day, time(0), tz)
        return When(start=start, end=end, grain="part_of_day" if constrained else "day",
                    earliest=earliest, latest=latest, excluded_weekdays=excluded, asap=st.asap)
    while first.weekday() in excluded and first + timedelta(days=1) < end_day:
        first += timedelta(days=1)
    return When(start=localize(first, earliest or time(0), tz), end=localize(end_day, time(0), tz),
                grain=grain, earliest=earliest, latest=latest, excluded_weekdays=excluded, asap=st.asap)


def _first_match(
    now: datetime, earliest: time | None, latest: time | None, excluded: frozenset[int], tz: ZoneInfo
) -> datetime:
    """The first instant at or after ``now`` that meets the time-of-day and weekday limits."""
    day = now.date()
    for _ in range(8):
        if day.weekday() not in excluded:
            start = localize(day, earliest or time(0), tz)
            if day == now.date():
                start = max(start, now, key=_utc)
            if latest is None or _utc(start) < _utc(localize(day, latest, tz)):
                return start
        day += timedelta(days=1)
    return now
