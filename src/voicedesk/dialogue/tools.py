"""The tools port: how a dialogue engine reaches business services.

Both engines (rules and LLM) call the same ``DialogueTools``; the dialogue layer never
touches storage itself. Implementations: ``InMemoryDialogueTools`` (tests, offline text
chat) in ``memory_tools.py`` and a database-backed one owned by ``appointments/``.

Appointments cross this port as ``AppointmentData`` dicts with ISO-8601 times carrying
the tenant's UTC offset — the same shape the text interface prints.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict

from voicedesk.domain.availability import Slot
from voicedesk.domain.when import When

Urgency = Literal["normal", "high"]
DsarKind = Literal["access", "rectification", "erasure", "restriction", "objection", "portability"]


class AppointmentData(TypedDict):
    """An appointment as the dialogue layer sees it."""

    id: str
    service: str  # service id
    staff: str | None  # staff id
    start: str  # ISO-8601 with offset
    end: str
    status: str  # "booked" | "cancelled" | "rescheduled"


@dataclass(frozen=True)
class Preferences:
    """What the caller said about their wishes, stored with the appointment (R-3.4).

    Time-of-day and weekday constraints travel inside ``When``; this carries the rest.
    """

    staff_id: str | None = None
    note: str | None = None  # as said, e.g. "vormittags, nicht freitags"


class DialogueTools(Protocol):
    """Business services the assistant may use during a call; all tenant-scoped.

    ``book`` and ``reschedule`` raise ``ConflictError`` when the slot was taken in the
    meantime; ``cancel``/``reschedule`` raise ``NotFoundError`` for unknown ids.
    """

    async def find_slots(
        self,
        service_id: str,
        when: When | None,
        preferences: Preferences | None = None,
        *,
        limit: int = 5,
    ) -> list[Slot]:
        """Nearest free slots matching ``when`` (``None``: as soon as possible).

        Same order as ``domain.availability.find_slots``: an exact wished time first if
        free, then the nearest others of that day; otherwise earliest first.
        """
        ...

    async def book(
        self,
        service_id: str,
        start: dt.datetime,
        *,
        staff: str | None,
        name: str,
        phone: str | None,
        email: str | None = None,
        preferences: Preferences | None = None,
    ) -> AppointmentData:
        """Book a slot returned by ``find_slots``."""
        ...

    async def find_caller_appointments(
        self, *, phone: str | None = None, name: str | None = None
    ) -> list[AppointmentData]:
        """Upcoming booked appointments of the caller, by E.164 number or by name."""
        ...

    async def cancel(self, appointment_id: str) -> AppointmentData:
        """Cancel an appointment; returns it with ``status == "cancelled"``."""
        ...

    async def reschedule(
        self, appointment_id: str, new_start: dt.datetime, *, staff: str | None = None
    ) -> AppointmentData:
        """Move an appointment to a free slot; returns the moved appointment."""
        ...

    async def take_message(self, *, name: str | None, phone: str | None, reason: str, urgency: Urgency) -> str:
        """Leave a message / callback task for staff; returns its id."""
        ...

    async def record_dsar_request(
        self, kind: DsarKind, *, phone: str | None, email: str | None = None, name: str | None = None
    ) -> str:
        """Record a data-subject request said during the call (R-8.7); returns its id."""
        ...
