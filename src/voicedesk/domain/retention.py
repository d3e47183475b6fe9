"""Retention periods per data category (R-7.1, R-7.2) and the call-metadata anonymisation
rule (R-7.3). Pure: times are passed in and must be timezone-aware.

Defaults (the privacy policy's promises) and what a tenant may set:

================  ============================  ===================  ==========
category          default                       tenant may set       after it
================  ============================  ===================  ==========
recordings        90 days after the call        30-365 days          deleted
transcripts       180 days after the call       7-365 days           deleted
call_metadata     12 months after the call      1-12 months          anonymised
customer_data     end of relationship + 3 years 0-10 years           deleted
logs              90 days after the entry       7-90 days            deleted
================  ============================  ===================  ==========

Upper bounds are the promised periods where the policy names one (metadata 12 months,
logs 90 days) and the policy's range for recordings; transcripts may go up to a year like
recordings; customer data up to the 10 years of commercial and tax law (§ 257 HGB,
§ 147 AO). Legal holds are not a period: the sweep (``voicedesk.privacy``) skips held
records whatever ``is_expired`` says.

Months and years are calendar months and years (31 Jan + 1 month = 28/29 Feb; 29 Feb +
3 years = 28 Feb), counted in the time zone of the reference time.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from voicedesk.domain.errors import InvalidInputError

__all__ = [
    "ANONYMISED_CALL_FIELDS",
    "OUTCOME_CATEGORIES",
    "Action",
    "DataCategory",
    "RetentionPolicy",
    "action_after_expiry",
    "anonymise_call_metadata",
    "expiry",
    "is_expired",
]


class DataCategory(enum.StrEnum):
    """The kinds of stored data that have their own retention period."""

    RECORDINGS = "recordings"
    TRANSCRIPTS = "transcripts"
    CALL_METADATA = "call_metadata"
    CUSTOMER_DATA = "customer_data"
    LOGS = "logs"


class Action(enum.StrEnum):
    """What happens to a record once its period has run out."""

    DELETE = "delete"
    ANONYMISE = "anonymise"


@dataclass(frozen=True)
class _Bound:
    field: str
    unit: str
    low: int
    high: int


_BOUNDS: dict[DataCategory, _Bound] = {
    DataCategory.RECORDINGS: _Bound("recordings_days", "days", 30, 365),
    DataCategory.TRANSCRIPTS: _Bound("transcripts_days", "days", 7, 365),
    DataCategory.CALL_METADATA: _Bound("call_metadata_months", "months", 1, 12),
    DataCategory.CUSTOMER_DATA: _Bound("customer_data_years", "years", 0, 10),
    DataCategory.LOGS: _Bound("logs_days", "days", 7, 90),
}


@dataclass(frozen=True)
class RetentionPolicy:
    """A tenant's retention periods; the defaults are the privacy policy's."""

    recordings_days: int = 90
    transcripts_days: int = 180
    call_metadata_months: int = 12
    customer_data_years: int = 3
    logs_days: int = 90

    def __post_init__(self) -> None:
        for bound in _BOUNDS.values():
            value = getattr(self, bound.field)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInputError(f"{bound.field} must be a whole number of {bound.unit}",
                                        field=bound.field)
            if not bound.low <= value <= bound.high:
                raise InvalidInputError(
                    f"{bound.field} must be between {bound.low} and {bound.high} {bound.unit}",
                    field=bound.field, low=bound.low, high=bound.high,
                )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> RetentionPolicy:
        """Build a policy from a tenant's settings (e.g. parsed YAML or an API body).

        Missing keys take the defaults; unknown keys and out-of-range or non-integer
        values raise ``InvalidInputError`` naming the field.
        """
        known = {f.name for f in fields(cls)}
        for key in settings:
            if key not in known:
                raise InvalidInputError(f"unknown retention setting {key!r}", field=str(key))
        return cls(**dict(settings))

    def period(self, category: DataCategory) -> tuple[int, str]:
        """The configured period of ``category`` as (amount, unit)."""
        bound = _BOUNDS[category]
        return getattr(self, bound.field), bound.unit


def _add_months(moment: dt.datetime, months: int) -> dt.datetime:
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _aware(value: dt.datetime, name: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(f"{name} must be timezone-aware", field=name)
    return value


def expiry(category: DataCategory, policy: RetentionPolicy, reference_time: dt.datetime) -> dt.datetime:
    """When a record of ``category`` expires.

    ``reference_time`` is the start of its period: the call's start for recordings,
    transcripts and call metadata, the end of the customer relationship for customer data,
    the entry's time for logs.
    """
    _aware(reference_time, "reference_time")
    amount, unit = policy.period(category)
    if unit == "days":
        return reference_time + dt.timedelta(days=amount)
    if unit == "months":
        return _add_months(reference_time, amount)
    return _add_months(reference_time, 12 * amount)


def is_expired(
    category: DataCategory, policy: RetentionPolicy, reference_time: dt.datetime, now: dt.datetime
) -> bool:
    """True once ``now`` has reached the record's expiry."""
    return _aware(now, "now") >= expiry(category, policy, reference_time)


def action_after_expiry(category: DataCategory) -> Action:
    """Call metadata is anonymised (statistics survive); everything else is deleted."""
    return Action.ANONYMISE if category is DataCategory.CALL_METADATA else Action.DELETE


# --- anonymisation of call metadata -------------------------------------------------------

OUTCOME_CATEGORIES = frozenset(
    {"appointment_booked", "appointment_cancelled", "appointment_rescheduled", "message_taken",
     "forwarded", "information", "dsar_received", "abandoned", "other"}
)

ANONYMISED_CALL_FIELDS: tuple[str, ...] = (
    "id", "tenant_id", "date", "duration_seconds", "direction", "status", "outcome_category", "language",
)
"""The fields an anonymised call keeps. Everything else is dropped: caller and called
numbers, caller-ID name, subject and contact links, carrier call ids, exact times of day,
summaries, notes, tool calls and any other free text."""

_DURATION_STEP = 10


def anonymise_call_metadata(record: Mapping[str, Any]) -> dict[str, Any]:
    """The anonymised form of one call record (a mapping of column name to value).

    Kept, generalised so that no path leads back to the person: the calendar date of the
    start in the tenant's zone (``started_at`` must be timezone-aware and already in that
    zone; the time of day is dropped), the duration rounded to 10 seconds, direction,
    final status, language, and the outcome category (values outside
    ``OUTCOME_CATEGORIES`` become ``"other"``, so free text cannot slip through). ``id``
    and ``tenant_id`` stay so the row can be counted and swept idempotently; they are
    random identifiers that point to nothing once the person's data is gone.
    """
    started = record.get("started_at")
    if not isinstance(started, dt.datetime):
        raise InvalidInputError("started_at must be a datetime", field="started_at")
    _aware(started, "started_at")
    duration = record.get("duration_seconds")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int | float)
                                 or duration < 0):
        raise InvalidInputError("duration_seconds must be a non-negative number", field="duration_seconds")
    outcome = record.get("outcome_category")
    return {
        "id": record.get("id"),
        "tenant_id": record.get("tenant_id"),
        "date": started.date(),
        "duration_seconds": None if duration is None else round(duration / _DURATION_STEP) * _DURATION_STEP,
        "direction": record.get("direction"),
        "status": record.get("status"),
        "outcome_category": outcome if outcome in OUTCOME_CATEGORIES else "other",
        "language": record.get("language"),
    }
