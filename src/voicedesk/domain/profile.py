"""The business profile of a tenant: who they are, when they are open, what they offer.

A profile is written as YAML by the business (see ``examples/``), validated here, imported
into the database and edited there afterwards. Text that callers hear is given per
language (``{"de": "...", "en": "..."}``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import zoneinfo
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from voicedesk.domain.errors import ProfileError

Language = Literal["de", "en"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LocalizedText = dict[Language, str]

_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")

DEFAULT_ANNOUNCEMENT: LocalizedText = {
    "de": "Dieser Anruf wird von einem KI-Assistenten beantwortet und kann zu Qualitäts- und "
    "Schulungszwecken unserer Mitarbeitenden aufgezeichnet werden.",
    "en": "This call is answered by an AI assistant and may be recorded for quality purposes and "
    "to train our staff.",
}
DEFAULT_CONSENT_QUESTION: LocalizedText = {
    "de": "Sind Sie mit der Aufzeichnung einverstanden? Sagen Sie ja oder nein, oder drücken Sie "
    "die 1 für ja und die 2 für nein.",
    "en": "Do you agree to the recording? Say yes or no, or press 1 for yes and 2 for no.",
}
DEFAULT_PRIVACY_NOTICE: LocalizedText = {
    "de": "Kurzer Datenschutzhinweis: Verantwortlich ist {name}. Wir verarbeiten Ihre Angaben, um "
    "Ihr Anliegen zu bearbeiten, Aufzeichnungen nur mit Ihrer Einwilligung. Sie haben das Recht "
    "auf Auskunft, Berichtigung, Löschung, Einschränkung, Widerspruch und Beschwerde bei der "
    "Aufsichtsbehörde. Den vollständigen Hinweis schicken wir Ihnen gern per SMS.",
    "en": "A short privacy notice: the controller is {name}. We process your details to handle "
    "your request, and record only with your consent. You have the right of access, "
    "rectification, erasure, restriction, objection and to complain to the supervisory "
    "authority. We can send you the full notice by text message.",
}


def normalize_e164(number: str, default_region: str = "DE") -> str:
    """Return ``number`` in E.164, or raise ``ValueError`` with a message free of the number."""
    try:
        parsed = phonenumbers.parse(number, default_region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError("not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


E164 = Annotated[str, Field(description="phone number, normalised to E.164")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeSpan(_Model):
    """A half-open local-time interval within one day, e.g. 08:00-12:00."""

    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, text: str) -> TimeSpan:
        m = _SPAN.match(text.strip())
        if not m:
            raise ValueError(f"time span {text!r} must look like 08:00-12:30")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        end = dt.time.max if h2 == 24 else dt.time(h2, m2)
        span = cls(start=dt.time(h1, m1), end=end)
        if span.end <= span.start:
            raise ValueError(f"time span {text!r} ends before it starts")
        return span


def _parse_hours(value: Any) -> dict[Weekday, tuple[TimeSpan, ...]]:
    if not isinstance(value, dict):
        raise ValueError("opening hours must map weekdays (mon..sun) to lists of spans")
    out: dict[Weekday, tuple[TimeSpan, ...]] = {}
    for day, spans in value.items():
        if day not in WEEKDAYS:
            raise ValueError(f"unknown weekday {day!r}; use one of {', '.join(WEEKDAYS)}")
        if spans in (None, "closed"):
            out[day] = ()
            continue
        items = [spans] if isinstance(spans, str) else spans
        parsed = tuple(
            s if isinstance(s, TimeSpan) else TimeSpan.model_validate(s) if isinstance(s, dict)
            else TimeSpan.parse(str(s))
            for s in items
        )
        ordered = sorted(parsed, key=lambda s: s.start)
        for a, b in itertools.pairwise(ordered):
            if b.start < a.end:
                raise ValueError(f"opening hours on {day} overlap")
        out[day] = tuple(ordered)
    return out


WeeklyHours = dict[Weekday, tuple[TimeSpan, ...]]


class Service(_Model):
    """Something a caller can book, with its length and who can do it."""

    id: str
    name: LocalizedText
    aliases: dict[Language, list[str]] = Field(default_factory=dict)
    duration_min: int = Field(gt=0, le=8 * 60)
    buffer_min: int = Field(default=0, ge=0, le=120)
    price: LocalizedText | None = None
    staff: list[str] = Field(default_factory=list, description="staff ids; empty means anyone")


class Staff(_Model):
    """A person or resource with their own hours (defaults to the business hours)."""

    id: str
    name: str
    hours: WeeklyHours | None = None

    @field_validator("hours", mode="before")
    @classmethod
    def _hours(cls, v: Any) -> Any:
        return None if v is None else _parse_hours(v)


class FaqEntry(_Model):
    """A question callers ask, the words that reveal it, and the answer."""

    id: str
    keywords: dict[Language, list[str]]
    answer: LocalizedText


class Party(_Model):
    """A named organisation with an address (controller, supervisory authority)."""

    name: str
    address: str | None = None
    email: str | None = None
    phone: str | None = None
    url: str | None = None


class RetentionSettings(_Model):
    """Per-tenant retention periods (seed §7, R-7.1) within the bounds the policy promises.

    After expiry transcripts are deleted, or with ``transcripts_after_expiry: anonymise``
    kept redacted (no path back to the person, R-7.3) for statistics.
    """

    recordings_days: int = Field(default=90, ge=30, le=365)
    transcripts_days: int = Field(default=180, ge=7, le=365)
    transcripts_after_expiry: Literal["delete", "anonymise"] = "delete"
    call_metadata_days: int = Field(default=365, ge=30, le=365)
    customer_years_after_relationship: int = Field(default=3, ge=0, le=10)
    logs_days: int = Field(default=90, ge=7, le=90)


class ReminderSettings(_Model):
    hours_before: int = Field(default=24, ge=1, le=24 * 14)
    sms: bool = True
    email: bool = True


class TenantProfile(_Model):
    """The validated business profile; see ``examples/*.yaml``."""

    slug: str
    name: str
    language: Language = "de"
    languages: list[Language] = Field(default_factory=list)
    number_languages: dict[str, Language] = Field(default_factory=dict)
    timezone: str = "Europe/Berlin"
    holiday_region: str | None = None
    twilio_numbers: list[str] = Field(default_factory=list)
    forwarding_number: str | None = None
    consent_mode: Literal["ask", "announce"] = "ask"
    recording_enabled: bool = True
    sentiment_analysis: bool = False
    address: str | None = None
    controller: Party | None = None
    supervisory_authority: Party | None = None
    privacy_notice_url: str | None = None
    opening_hours: WeeklyHours
    breaks: WeeklyHours = Field(default_factory=dict)
    closed_days: list[dt.date] = Field(default_factory=list)
    services: list[Service] = Field(default_factory=list)
    staff: list[Staff] = Field(default_factory=list)
    faq: list[FaqEntry] = Field(default_factory=list)
    greeting: LocalizedText = Field(default_factory=dict)
    announcement: LocalizedText = Field(default_factory=lambda: dict(DEFAULT_ANNOUNCEMENT))
    consent_question: LocalizedText = Field(default_factory=lambda: dict(DEFAULT_CONSENT_QUESTION))
    privacy_notice: LocalizedText = Field(default_factory=lambda: dict(DEFAULT_PRIVACY_NOTICE))
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    reminders: ReminderSettings = Field(default_factory=ReminderSettings)

    @field_validator("slug")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError("slug must be 2-63 lowercase letters, digits or dashes")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @field_validator("opening_hours", "breaks", mode="before")
    @classmethod
    def _hours(cls, v: Any) -> Any:
        return _parse_hours(v or {})

    @field_validator("twilio_numbers")
    @classmethod
    def _numbers(cls, v: list[str]) -> list[str]:
        return [normalize_e164(n) for n in v]

    @field_validator("forwarding_number")
    @classmethod
    def _forward(cls, v: str | None) -> str | None:
        return None if v is None else normalize_e164(v)

    @field_validator("number_languages")
    @classmethod
    def _number_langs(cls, v: dict[str, Language]) -> dict[str, Language]:
        return {normalize_e164(k): lang for k, lang in v.items()}

    @model_validator(mode="after")
    def _consistency(self) -> TenantProfile:
        staff_ids = {s.id for s in self.staff}
        for service in self.services:
            unknown = set(service.staff) - staff_ids
            if unknown:
                raise ValueError(f"service {service.id!r} names unknown staff {sorted(unknown)}")
        ids = [s.id for s in self.services]
        if len(ids) != len(set(ids)):
            raise ValueError("service ids must be unique")
        if self.language not in self.all_languages:
            raise ValueError("languages must include the default language")
        return self

    @property
    def all_languages(self) -> list[Language]:
        return self.languages or [self.language]

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def language_for_number(self, called: str | None) -> Language:
        """The fixed language of a called number (never auto-detected, see speech.md)."""
        if called and called in self.number_languages:
            return self.number_languages[called]
        return self.language

    def text(self, texts: LocalizedText, language: Language) -> str:
        """Pick the text in ``language``, falling back to the default language."""
        return texts.get(language) or texts.get(self.language) or next(iter(texts.values()), "")

    def service(self, service_id: str) -> Service | None:
        return next((s for s in self.services if s.id == service_id), None)


def parse_profile(data: Any) -> TenantProfile:
    """Validate raw profile data; raise ``ProfileError`` listing every problem by path."""
    try:
        return TenantProfile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "profile"
            problems.append(f"{where}: {err['msg']}")
        raise ProfileError("invalid tenant profile: " + "; ".join(problems), field="profile") from None
