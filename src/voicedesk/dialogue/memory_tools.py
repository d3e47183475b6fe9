"""``DialogueTools`` over in-memory lists: for unit tests, scenarios and database-free chat.

Slot finding is the real ``domain.availability.find_slots``; bookings, messages and
data-subject requests live in plain lists that tests inspect afterwards. Bookings are
serialised by one lock, so two conversations racing for a slot get exactly one success.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
from collections.abc import Callable, Iterable

from voicedesk.dialogue.tools import AppointmentData, DsarKind, Preferences, Urgency
from voicedesk.domain.availability import BusySpan, Slot, find_slots
from voicedesk.domain.errors import ConflictError, InvalidInputError, NotFoundError
from voicedesk.domain.numbers import fold
from voicedesk.domain.profile import TenantProfile
from voicedesk.domain.when import When


@dataclasses.dataclass
class StoredAppointment:
    """One appointment as the in-memory book keeps it (with its change history)."""

    id: str
    service_id: str
    staff_id: str | None
    start: dt.datetime
    end: dt.datetime
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    status: str = "booked"
    preferences: Preferences | None = None
    history: list[tuple[str, dt.datetime]] = dataclasses.field(default_factory=list)

    def data(self, tz: dt.tzinfo) -> AppointmentData:
        return {
            "id": self.id,
            "service": self.service_id,
            "staff": self.staff_id,
            "start": self.start.astimezone(tz).isoformat(),
            "end": self.end.astimezone(tz).isoformat(),
            "status": self.status,
        }


@dataclasses.dataclass(frozen=True)
class StoredMessage:
    id: str
    name: str | None
    phone: str | None
    reason: str
    urgency: Urgency


@dataclasses.dataclass(frozen=True)
class StoredDsarRequest:
    id: str
    kind: DsarKind
    phone: str | None
    email: str | None
    name: str | None
    received: dt.datetime


def _name_matches(query: str, name: str | None) -> bool:
    if not name:
        return False
    q = fold(query).replace("-", " ").split()
    n = fold(name).replace("-", " ").split()
    return bool(q) and all(part in n for part in q)


class InMemoryDialogueTools:
    """The tools port backed by lists; ``now`` is fixed or a clock function."""

    def __init__(
        self,
        profile: TenantProfile,
        *,
        now: dt.datetime | Callable[[], dt.datetime],
        appointments: Iterable[StoredAppointment] = (),
        blocks: Iterable[BusySpan] = (),
    ) -> None:
        if isinstance(now, dt.datetime) and now.tzinfo is None:
            raise ValueError("InMemoryDialogueTools needs an aware 'now'")
        self.profile = profile
        self._now = now
        self.appointments: list[StoredAppointment] = list(appointments)
        self.blocks: list[BusySpan] = list(blocks)
        self.messages: list[StoredMessage] = []
        self.dsar_requests: list[StoredDsarRequest] = []
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    def now(self) -> dt.datetime:
        return self._now() if callable(self._now) else self._now

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def add_appointment(
        self,
        service_id: str,
        start: dt.datetime,
        *,
        staff: str | None = None,
        end: dt.datetime | None = None,
        name: str | None = None,
        phone: str | None = None,
        status: str = "booked",
    ) -> StoredAppointment:
        """Seed an appointment without checks (tests set up fully booked days with it)."""
        service = self.profile.service(service_id)
        if service is None:
            raise NotFoundError("unknown service", field="service_id")
        if start.tzinfo is None:
            raise ValueError("appointment start must be aware")
        stored = StoredAppointment(
            id=self._next_id("apt"),
            service_id=service_id,
            staff_id=staff,
            start=start,
            end=end or start + dt.timedelta(minutes=service.duration_min),
            name=name,
            phone=phone,
            status=status,
        )
        self.appointments.append(stored)
        return stored

    def _busy(self, *, ignore: str | None = None) -> list[BusySpan]:
        spans = list(self.blocks)
        for a in self.appointments:
            if a.status != "booked" or a.id == ignore:
                continue
            service = self.profile.service(a.service_id)
            buffer = dt.timedelta(minutes=service.buffer_min if service else 0)
            spans.append(BusySpan(staff_id=a.staff_id, start=a.start, end=a.end + buffer))
        return spans

    def _slots(
        self,
        service_id: str,
        when: When | None,
        *,
        staff_id: str | None,
        limit: int,
        ignore: str | None = None,
    ) -> list[Slot]:
        return find_slots(
            self.profile,
            service_id=service_id,
            when=when,
            now=self.now(),
            existing=self._busy(ignore=ignore),
            limit=limit,
            staff_id=staff_id,
        )

    def _free_slot(self, service_id: str, start: dt.datetime, staff: str | None, *, ignore: str | None = None) -> Slot:
        exact = When(start=start.astimezone(self.profile.tz), grain="minute")
        for slot in self._slots(service_id, exact, staff_id=staff, limit=50, ignore=ignore):
            if slot.start == start:
                return slot
        raise ConflictError("the slot is not free", field="start")

    async def find_slots(
        self, service_id: str, when: When | None, preferences: Preferences | None = None, *, limit: int = 5
    ) -> list[Slot]:
        staff_id = preferences.staff_id if preferences else None
        return self._slots(service_id, when, staff_id=staff_id, limit=limit)

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
        if not name.strip():
            raise InvalidInputError("a booking needs a name", field="name")
        async with self._lock:
            slot = self._free_slot(service_id, start, staff)
            stored = StoredAppointment(
                id=self._next_id("apt"),
                service_id=service_id,
                staff_id=slot.staff_id,
                start=slot.start,
                end=slot.end,
                name=name,
                phone=phone,
                email=email,
                preferences=preferences,
                history=[("booked", self.now())],
            )
            self.appointments.append(stored)
        return stored.data(self.profile.tz)

    async def find_caller_appointments(
        self, *, phone: str | None = None, name: str | None = None
    ) -> list[AppointmentData]:
        now = self.now()
        found = [
            a
            for a in self.appointments
            if a.status == "booked"
            and a.start >= now
            and ((phone is not None and a.phone == phone) or (name is not None and _name_matches(name, a.name)))
        ]
        return [a.data(self.profile.tz) for a in sorted(found, key=lambda a: a.start)]

    def _get(self, appointment_id: str) -> StoredAppointment:
        for a in self.appointments:
            if a.id == appointment_id and a.status == "booked":
                return a
        raise NotFoundError("no such appointment", field="appointment_id")

    async def cancel(self, appointment_id: str) -> AppointmentData:
        async with self._lock:
            stored = self._get(appointment_id)
            stored.status = "cancelled"
            stored.history.append(("cancelled", self.now()))
        return stored.data(self.profile.tz)

    async def reschedule(
        self, appointment_id: str, new_start: dt.datetime, *, staff: str | None = None
    ) -> AppointmentData:
        async with self._lock:
            stored = self._get(appointment_id)
            slot = self._free_slot(stored.service_id, new_start, staff, ignore=stored.id)
            stored.history.append(("rescheduled", stored.start))
            stored.start, stored.end, stored.staff_id = slot.start, slot.end, slot.staff_id
        return stored.data(self.profile.tz)

    async def take_message(self, *, name: str | None, phone: str | None, reason: str, urgency: Urgency) -> str:
        message = StoredMessage(self._next_id("msg"), name, phone, reason, urgency)
        self.messages.append(message)
        return message.id

    async def record_dsar_request(
        self, kind: DsarKind, *, phone: str | None, email: str | None = None, name: str | None = None
    ) -> str:
        request = StoredDsarRequest(self._next_id("dsar"), kind, phone, email, name, self.now())
        self.dsar_requests.append(request)
        return request.id
