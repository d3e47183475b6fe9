"""When a business can take an appointment: opening hours, holidays and the slot finder.

``find_slots`` returns the nearest free slots for a service that match a caller's wish
(a ``when.When``): inside the opening hours of that weekday minus breaks, never on a
public holiday of the tenant's ``holiday_region`` or one of its own closed days, within the
hours of a staff member who offers the service, clear of existing appointments including
the service's buffer, on a clock grid, after a lead time and before a horizon.

Time is handled as the business sees it: each day is walked as a local date, each
candidate start is a local wall-clock time attached to the tenant's time zone
(``when.localize``), and durations are added in absolute time. A 30-minute appointment at
01:45 on the night clocks spring forward therefore ends at 03:15 local time, and the days
of a DST change keep their ordinary opening hours.

Conventions:
- A slot's appointment (``duration_min``) must lie inside one open interval; its buffer
  (``buffer_min``) must be free of other appointments but may reach past closing time.
- ``BusySpan`` ends are taken as given: pass an appointment's end including its buffer.
  A span without ``staff_id`` blocks every staff member (a business-wide block).
- Staff hours apply inside the business hours (their intersection).
- ``earliest``/``latest`` of a wish bound the whole appointment: it starts at or after
  ``earliest`` and ends by ``latest``.
- A wish for an exact time ("morgen um 15 Uhr") returns that time if free, then the
  nearest other times of the same day(s), closest first.
- A wish whose period has no free slot gives ``[]``; widening the search (e.g. with
  ``when=None``) is the dialogue's decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as holidays_data

from voicedesk.domain.errors import InvalidInputError, NotFoundError
from voicedesk.domain.numbers import Language
from voicedesk.domain.profile import WEEKDAYS, Staff, TenantProfile, WeeklyHours
from voicedesk.domain.when import When, localize

DEFAULT_GRID_MIN = 15
DEFAULT_LEAD_MIN = 30
DEFAULT_HORIZON_DAYS = 60


@dataclass(frozen=True)
class BusySpan:
    """Time that is already taken: an appointment (with its buffer) or a block."""

    staff_id: str | None
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Slot:
    """A bookable appointment: ``start``/``end`` are aware, in the tenant's time zone."""

    start: datetime
    end: datetime
    staff_id: str | None


Interval = tuple[datetime, datetime]


def public_holidays(region: str | None, years: Iterable[int]) -> set[date]:
    """Public holidays of ``region`` ("DE", "DE-HE", "AT-9") in ``years``.

    Raises ``InvalidInputError`` for a region the ``holidays`` package does not know.
    """
    if not region:
        return set()
    country, _, subdiv = region.upper().partition("-")
    try:
        table = holidays_data.country_holidays(country, subdiv=subdiv or None, years=sorted(set(years)))
    except NotImplementedError as exc:
        raise InvalidInputError(f"unknown holiday region {region!r}", field="holiday_region") from exc
    return set(table.keys())


def find_slots(
    profile: TenantProfile,
    *,
    service_id: str,
    when: When | None,
    now: datetime,
    existing: Sequence[BusySpan] = (),
    holidays: set[date] | None = None,
    limit: int = 3,
    staff_id: str | None = None,
    grid_min: int = DEFAULT_GRID_MIN,
    lead_min: int = DEFAULT_LEAD_MIN,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    spacing_min: int = 0,
) -> list[Slot]:
    """The nearest free slots for ``service_id`` that match ``when`` (``None``: any time).

    ``holidays`` overrides the public holidays of the profile's region (``None`` computes
    them). ``staff_id`` restricts the search to one staff member. ``spacing_min`` keeps the
    offered slots at least that far apart (0: adjacent grid times are fine). Raises
    ``NotFoundError`` for an unknown service or a staff member who does not offer it.
    """
    if now.tzinfo is None:
        raise ValueError("find_slots needs an aware 'now'")
    if grid_min <= 0 or limit <= 0:
        raise ValueError("grid_min and limit must be positive")
    service = profile.service(service_id)
    if service is None:
        raise NotFoundError("unknown service", field="service_id")
    tz = profile.tz
    staff = _staff_for(profile, service.staff, staff_id)
    duration = timedelta(minutes=service.duration_min)
    buffer = timedelta(minutes=service.buffer_min)
    now_local = now.astimezone(tz)
    not_before = now_local + timedelta(minutes=lead_min)
    first_day = now_local.date()
    last_day = first_day + timedelta(days=horizon_days)
    wished: time | None = None
    if when is not None:
        first_day = max(first_day, when.start.astimezone(tz).date())
        if when.end is not None:
            end_local = when.end.astimezone(tz)
            inclusive = end_local.date() - timedelta(days=1 if end_local.time() == time(0) else 0)
            last_day = min(last_day, inclusive)
        elif when.is_exact:
            last_day = min(last_day, first_day)
        if when.is_exact:
            wished = when.start.astimezone(tz).time()
    if holidays is None:
        holidays = public_holidays(profile.holiday_region, range(first_day.year, last_day.year + 1))
    closed = holidays | set(profile.closed_days)

    slots: list[Slot] = []
    day = first_day
    while day <= last_day and len(slots) < limit:
        if day not in closed and (when is None or day.weekday() not in when.excluded_weekdays):
            found = _day_slots(
                profile, day, tz, staff, duration, buffer, existing, grid_min, not_before, when
            )
            if wished is not None:
                target = _utc(localize(day, wished, tz))
                found.sort(key=lambda s: (abs(_utc(s.start) - target), _utc(s.start)))
            for slot in found:
                if len(slots) >= limit:
                    break
                if spacing_min and any(
                    abs(_utc(slot.start) - _utc(s.start)) < timedelta(minutes=spacing_min) for s in slots
                ):
                    continue
                slots.append(slot)
        day += timedelta(days=1)
    return slots


def is_open(profile: TenantProfile, at: datetime, *, holidays: set[date] | None = None) -> bool:
    """Whether the business is open at the instant ``at`` (breaks and holidays count as closed)."""
    if at.tzinfo is None:
        raise ValueError("is_open needs an aware datetime")
    tz = profile.tz
    local = at.astimezone(tz)
    day = local.date()
    if holidays is None:
        holidays = public_holidays(profile.holiday_region, [day.year])
    if day in holidays or day in profile.closed_days:
        return False
    intervals = _open_intervals(profile.opening_hours, profile.breaks, day, tz)
    return any(start <= _utc(at) < end for start, end in intervals)


def opening_hours_text(profile: TenantProfile, language: Language) -> str:
    """The weekly opening hours as one spoken sentence, breaks taken out.

    German: "Montag bis Freitag von 8 bis 12 Uhr und von 14 bis 18 Uhr, Samstag von 9 bis
    13 Uhr. Sonntag geschlossen." English: "Monday to Friday from 8 am to noon and from
    2 pm to 6 pm, Saturday from 9 am to 1 pm. Closed on Sunday."
    """
    per_day = [_spoken_spans(profile, i, language) for i in range(7)]
    groups: list[tuple[int, int, str]] = []
    for i, text in enumerate(per_day):
        if groups and groups[-1][2] == text and groups[-1][1] == i - 1:
            groups[-1] = (groups[-1][0], i, text)
        else:
            groups.append((i, i, text))
    names = _DAY_NAMES[language]
    open_parts: list[str] = []
    closed_days: list[str] = []
    joiner = " bis " if language == "de" else " to "
    for first, last, text in groups:
        if last == first:
            days = names[first]
        elif last == first + 1:
            days = names[first] + (" und " if language == "de" else " and ") + names[last]
        else:
            days = names[first] + joiner + names[last]
        if text:
            open_parts.append(f"{days} {text}")
        else:
            closed_days.append(days)
    if not open_parts:
        return "Wir haben zurzeit keine festen Öffnungszeiten." if language == "de" else \
            "We have no regular opening hours at the moment."
    sentence = ", ".join(open_parts) + "."
    if closed_days:
        closed = _join(closed_days, language)
        sentence += f" {closed} geschlossen." if language == "de" else f" Closed on {closed}."
    return sentence


# ---------------------------------------------------------------------------------------


_DAY_NAMES: dict[Language, tuple[str, ...]] = {
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}


def _join(items: list[str], language: Language) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + (" und " if language == "de" else " and ") + items[-1]


def _spoken_spans(profile: TenantProfile, weekday: int, language: Language) -> str:
    spans = _local_spans(profile.opening_hours, profile.breaks, weekday)
    if language == "de":
        parts = [f"von {_de_time(a)} bis {_de_time(b)} Uhr" for a, b in spans]
    else:
        parts = [f"from {_en_time(a)} to {_en_time(b)}" for a, b in spans]
    return (" und " if language == "de" else " and ").join(parts)


def _de_time(t: time) -> str:
    if t == time.max:
        return "24"
    return f"{t.hour}" if t.minute == 0 else f"{t.hour}:{t.minute:02d}"


def _en_time(t: time) -> str:
    if t == time.max or t == time(0):
        return "midnight"
    if t == time(12):
        return "noon"
    hour = t.hour % 12 or 12
    clock = f"{hour}" if t.minute == 0 else f"{hour}:{t.minute:02d}"
    return f"{clock} {'am' if t.hour < 12 else 'pm'}"


def _local_spans(hours: WeeklyHours, breaks: WeeklyHours, weekday: int) -> list[tuple[time, time]]:
    """Opening spans of a weekday as local times, with the breaks cut out."""
    key = WEEKDAYS[weekday]
    spans = [(s.start, s.end) for s in hours.get(key, ())]
    for b in breaks.get(key, ()):
        cut: list[tuple[time, time]] = []
        for start, end in spans:
            if b.end <= start or b.start >= end:
                cut.append((start, end))
                continue
            if start < b.start:
                cut.append((start, b.start))
            if b.end < end:
                cut.append((b.end, end))
        spans = cut
    return spans


def _utc(moment: datetime) -> datetime:
    """Compare and subtract in UTC: Python ignores DST folds between equal tzinfos."""
    return moment.astimezone(UTC)


def _at(day: date, t: time, tz: ZoneInfo) -> datetime:
    if t == time.max:
        return _utc(localize(day + timedelta(days=1), time(0), tz))
    return _utc(localize(day, t, tz))


def _open_intervals(hours: WeeklyHours, breaks: WeeklyHours, day: date, tz: ZoneInfo) -> list[Interval]:
    return [(_at(day, a, tz), _at(day, b, tz)) for a, b in _local_spans(hours, breaks, day.weekday())]


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for s1, e1 in a:
        for s2, e2 in b:
            start, end = max(s1, s2), min(e1, e2)
            if start < end:
                out.append((start, end))
    return sorted(out)


def _staff_for(profile: TenantProfile, offered_by: list[str], staff_id: str | None) -> list[Staff | None]:
    """The staff who can do the service, in profile order; ``[None]`` if the profile has none."""
    if staff_id is not None:
        member = next((s for s in profile.staff if s.id == staff_id), None)
        if member is None or (offered_by and staff_id not in offered_by):
            raise NotFoundError("staff member does not offer this service", field="staff_id")
        return [member]
    if offered_by:
        return [s for s in profile.staff if s.id in offered_by]
    return list(profile.staff) or [None]


def _day_slots(
    profile: TenantProfile,
    day: date,
    tz: ZoneInfo,
    staff: list[Staff | None],
    duration: timedelta,
    buffer: timedelta,
    existing: Sequence[BusySpan],
    grid_min: int,
    not_before: datetime,
    when: When | None,
) -> list[Slot]:
    """Free slots of one day in time order, one per start time (first free staff wins)."""
    business = _open_intervals(profile.opening_hours, profile.breaks, day, tz)
    if not business:
        return []
    lo = _utc(not_before)
    hi: datetime | None = None
    if when is not None:
        if when.earliest is not None:
            lo = max(lo, _at(day, when.earliest, tz))
        if when.latest is not None:
            hi = _at(day, when.latest, tz)
        lo = max(lo, _utc(when.start)) if not when.is_exact else lo
        if when.end is not None:
            hi = _utc(when.end) if hi is None else min(hi, _utc(when.end))
    by_start: dict[datetime, Slot] = {}
    for member in staff:
        intervals = business
        if member is not None and member.hours is not None:
            intervals = _intersect(business, _open_intervals(member.hours, {}, day, tz))
        busy = [
            (_utc(b.start), _utc(b.end)) for b in existing
            if b.staff_id is None or member is None or b.staff_id == member.id
        ]
        member_id = None if member is None else member.id
        for open_at, close_at in intervals:
            for start in _grid(open_at, close_at, grid_min, tz):
                end = start + duration
                if start < lo or end > close_at or (hi is not None and end > hi) or start in by_start:
                    continue
                blocked_until = end + buffer
                if any(b_start < blocked_until and start < b_end for b_start, b_end in busy):
                    continue
                by_start[start] = Slot(start=start.astimezone(tz), end=end.astimezone(tz), staff_id=member_id)
    return [by_start[k] for k in sorted(by_start)]


def _grid(open_at: datetime, close_at: datetime, grid_min: int, tz: ZoneInfo) -> Iterable[datetime]:
    """Start times (UTC) on the local clock grid (multiples of ``grid_min`` after midnight)."""
    local = open_at.astimezone(tz)
    minutes = local.hour * 60 + local.minute
    current = open_at + timedelta(minutes=-(-minutes // grid_min) * grid_min - minutes)
    while current < close_at:
        yield current
        current += timedelta(minutes=grid_min)
