"""Slot locks: the grid units an appointment occupies, and busy time derived from them.

An appointment holds one ``SlotLock`` row per ``LOCK_UNIT`` of ``[start, end + buffer)``
for its staff member (units aligned to the UTC epoch). The primary key
(tenant, staff, unit start) makes two overlapping bookings impossible: the second insert
fails, on SQLite and PostgreSQL alike, however the two transactions interleave.
Availability is computed from the same rows, so "offered as free" and "can be locked"
never disagree. Times not on the unit grid are rounded outwards (a 7-minute service
blocks 10 minutes).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from voicedesk.domain.availability import BusySpan

LOCK_UNIT = dt.timedelta(minutes=5)
NO_STAFF = "-"  # staff id of bookings in a profile without staff: one shared resource
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def lock_units(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Start instants (UTC) of every lock unit that ``[start, end)`` touches."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("lock_units needs aware datetimes")
    if end <= start:
        raise ValueError("lock_units needs end after start")
    first = (start.astimezone(dt.UTC) - _EPOCH) // LOCK_UNIT
    last = -(-(end.astimezone(dt.UTC) - _EPOCH) // LOCK_UNIT)  # ceiling
    return [_EPOCH + LOCK_UNIT * n for n in range(first, last)]


def staff_key(staff_id: str | None) -> str:
    return NO_STAFF if staff_id is None else staff_id


def staff_of_key(key: str) -> str | None:
    return None if key == NO_STAFF else key


def busy_spans(locks: Iterable[tuple[str, dt.datetime, uuid.UUID]]) -> list[BusySpan]:
    """Merge (staff key, unit start, appointment id) rows into contiguous busy spans per staff.

    Units of different appointments are not merged, so a span is never longer than what one
    appointment holds (that keeps buffers honest at the edges).
    """
    ordered = sorted(locks, key=lambda r: (r[0], r[1]))
    spans: list[BusySpan] = []
    current: tuple[str, dt.datetime, dt.datetime, uuid.UUID] | None = None
    for key, unit, appointment_id in ordered:
        if current is not None and current[0] == key and current[2] == unit and current[3] == appointment_id:
            current = (key, current[1], unit + LOCK_UNIT, appointment_id)
            continue
        if current is not None:
            spans.append(BusySpan(staff_id=staff_of_key(current[0]), start=current[1], end=current[2]))
        current = (key, unit, unit + LOCK_UNIT, appointment_id)
    if current is not None:
        spans.append(BusySpan(staff_id=staff_of_key(current[0]), start=current[1], end=current[2]))
    return spans
