"""Data-subject requests (R-8.7): deadline maths and the request's state machine. Pure.

Deadline (Art. 12(3) GDPR, computed as Regulation (EEC, Euratom) No 1182/71 counts periods
in months):

- due = the same day of the month after receipt ("received 15 March → due 15 April"); when
  that day does not exist, the last day of that month (31 January → 28/29 February,
  31 March → 30 April);
- a due date on a Saturday, Sunday or public holiday of the tenant's ``holiday_region``
  (``"DE"`` or ``"DE-HE"`` style, via the ``holidays`` package) moves to the next working
  day;
- 24 and 31 December are working days: they are not public holidays in any German state,
  so a request received on 24 November is due on 24 December (when that is a weekday).
  A business closed on those days must still answer in time;
- the controller may extend by up to two further months in total (Art. 12(3) sentence 2)
  if it records a reason and does so no later than the current due date (it has to tell
  the person within the first month). The extended due date is counted again from receipt
  (receipt + 1 + extension months), with the same end-of-month and working-day rules.

Dates are calendar dates in the tenant's time zone; the caller converts a receipt
timestamp with the tenant's zone before calling in. Nothing here reads a clock.

States (``DsarState``)::

    RECEIVED ──> IDENTITY_VERIFICATION ──> IN_PROGRESS ──> COMPLETED
        │                 │                     │
        └─────────────────┴─────────────────────┴──> REFUSED (with reason)

Caller ID alone never verifies identity, so there is no edge from RECEIVED straight to
IN_PROGRESS. COMPLETED and REFUSED are final. An illegal transition raises
``ConflictError``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass, replace

import holidays

from voicedesk.domain.errors import ConflictError, InvalidInputError

__all__ = [
    "DEFAULT_REMINDER_DAYS",
    "MAX_EXTENSION_MONTHS",
    "DsarRequest",
    "DsarState",
    "add_months",
    "due_date",
    "is_working_day",
    "next_working_day",
    "reminder_dates",
]

MAX_EXTENSION_MONTHS = 2
DEFAULT_REMINDER_DAYS: tuple[int, ...] = (7, 2)


class DsarState(enum.StrEnum):
    """Where a data-subject request stands."""

    RECEIVED = "received"
    IDENTITY_VERIFICATION = "identity_verification"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REFUSED = "refused"

    @property
    def is_final(self) -> bool:
        return self in (DsarState.COMPLETED, DsarState.REFUSED)


_TRANSITIONS: dict[DsarState, frozenset[DsarState]] = {
    DsarState.RECEIVED: frozenset({DsarState.IDENTITY_VERIFICATION, DsarState.REFUSED}),
    DsarState.IDENTITY_VERIFICATION: frozenset({DsarState.IN_PROGRESS, DsarState.REFUSED}),
    DsarState.IN_PROGRESS: frozenset({DsarState.COMPLETED, DsarState.REFUSED}),
    DsarState.COMPLETED: frozenset(),
    DsarState.REFUSED: frozenset(),
}


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, or the last day of that month if it has no such day."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(day.day, last))


@functools.cache
def _calendar(region: str) -> holidays.HolidayBase:
    country, _, subdiv = region.partition("-")
    try:
        return holidays.country_holidays(country.upper(), subdiv=subdiv.upper() or None)
    except NotImplementedError as exc:
        raise InvalidInputError(f"unknown holiday region {region!r}", field="holiday_region") from exc


def is_working_day(day: dt.date, holiday_region: str) -> bool:
    """Monday to Friday and not a public holiday in ``holiday_region`` (e.g. ``"DE-HE"``)."""
    return day.weekday() < 5 and day not in _calendar(holiday_region)


def next_working_day(day: dt.date, holiday_region: str) -> dt.date:
    """``day`` itself if it is a working day, else the first working day after it."""
    while not is_working_day(day, holiday_region):
        day += dt.timedelta(days=1)
    return day


def due_date(received_on: dt.date, holiday_region: str, extension_months: int = 0) -> dt.date:
    """When the answer to a request received on ``received_on`` is due."""
    if not 0 <= extension_months <= MAX_EXTENSION_MONTHS:
        raise InvalidInputError(
            f"an extension is 0 to {MAX_EXTENSION_MONTHS} months", field="extension_months"
        )
    return next_working_day(add_months(received_on, 1 + extension_months), holiday_region)


def reminder_dates(
    due: dt.date,
    holiday_region: str,
    days_before: Iterable[int] = DEFAULT_REMINDER_DAYS,
    *,
    not_before: dt.date | None = None,
) -> list[dt.date]:
    """Dates to remind staff of a deadline, ``days_before`` calendar days ahead of ``due``.

    A reminder that falls on a non-working day comes on the working day before it, so that
    someone reads it; reminders before ``not_before`` (e.g. the receipt date) are dropped.
    Sorted, without duplicates.
    """
    out: set[dt.date] = set()
    for days in days_before:
        if days <= 0:
            raise InvalidInputError("reminders come before the deadline", field="days_before")
        day = due - dt.timedelta(days=days)
        while not is_working_day(day, holiday_region):
            day -= dt.timedelta(days=1)
        if not_before is None or day >= not_before:
            out.add(day)
    return sorted(out)


@dataclass(frozen=True)
class DsarRequest:
    """A data-subject request's deadline-relevant facts and state. Immutable: every change
    returns a new value for the service to persist."""

    received_on: dt.date
    holiday_region: str
    state: DsarState = DsarState.RECEIVED
    extension_months: int = 0
    extension_reasons: tuple[str, ...] = ()
    refusal_reason: str | None = None

    def __post_init__(self) -> None:
        _calendar(self.holiday_region)
        due_date(self.received_on, self.holiday_region, self.extension_months)

    @property
    def due_on(self) -> dt.date:
        """The current due date, extensions included."""
        return due_date(self.received_on, self.holiday_region, self.extension_months)

    def is_overdue(self, today: dt.date) -> bool:
        """True once ``today`` is past the due date and the request is still open."""
        return not self.state.is_final and today > self.due_on

    def reminders(self, days_before: Iterable[int] = DEFAULT_REMINDER_DAYS) -> list[dt.date]:
        """Reminder dates for the current due date (none once the request is closed)."""
        if self.state.is_final:
            return []
        return reminder_dates(self.due_on, self.holiday_region, days_before, not_before=self.received_on)

    def can_move_to(self, state: DsarState) -> bool:
        return state in _TRANSITIONS[self.state]

    def move_to(self, state: DsarState, *, reason: str | None = None) -> DsarRequest:
        """The request in ``state``; refusing needs a ``reason``.

        Raises ``ConflictError`` for a transition the workflow does not allow.
        """
        if not self.can_move_to(state):
            raise ConflictError(
                f"a request in state {self.state.value} cannot move to {state.value}",
                state=self.state.value, target=state.value,
            )
        if state is DsarState.REFUSED:
            return replace(self, state=state, refusal_reason=_reason(reason))
        return replace(self, state=state)

    def extend(self, months: int, reason: str, *, today: dt.date) -> DsarRequest:
        """Push the due date back by ``months`` (two in total at most), for ``reason``.

        Allowed while the request is open and no later than the current due date.
        """
        if self.state.is_final:
            raise ConflictError(f"a {self.state.value} request cannot be extended", state=self.state.value)
        if today > self.due_on:
            raise ConflictError("the due date has passed; an extension had to be declared before it",
                                due_on=self.due_on.isoformat())
        if months < 1 or self.extension_months + months > MAX_EXTENSION_MONTHS:
            raise InvalidInputError(
                f"the deadline can be extended by at most {MAX_EXTENSION_MONTHS} months in total",
                field="months",
            )
        return replace(
            self,
            extension_months=self.extension_months + months,
            extension_reasons=(*self.extension_reasons, _reason(reason)),
        )


def _reason(reason: str | None) -> str:
    if reason is None or not reason.strip():
        raise InvalidInputError("a reason is required", field="reason")
    return reason.strip()
