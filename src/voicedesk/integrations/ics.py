"""Calendar invites (RFC 5545/5546) for appointments, built with ``icalendar``.

One ``VCALENDAR`` with ``METHOD:REQUEST``, the ``VTIMEZONE`` of the business and one
``VEVENT``: a stable ``UID`` (so a moved appointment updates the same calendar entry; bump
``sequence``), ``DTSTART``/``DTEND`` with ``TZID``, ``SUMMARY``, ``LOCATION``, ``ORGANIZER`` and
the invited ``ATTENDEE``. ``METHOD:CANCEL`` with ``STATUS:CANCELLED`` withdraws it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

import icalendar

PRODID = "-//voicedesk//appointments//EN"


@dataclass(frozen=True)
class Invite:
    uid: str
    start: dt.datetime
    end: dt.datetime
    timezone: str
    summary: str
    organizer_email: str
    organizer_name: str
    attendee_email: str | None = None
    location: str | None = None
    description: str | None = None
    sequence: int = 0


def invite_ics(invite: Invite, *, now: dt.datetime, method: Literal["REQUEST", "CANCEL"] = "REQUEST") -> bytes:
    """The invite as ``text/calendar`` bytes (CRLF line endings, folded as the RFC wants)."""
    tz = ZoneInfo(invite.timezone)
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    event = icalendar.Event()
    event.add("uid", invite.uid)
    event.add("dtstamp", now.astimezone(dt.UTC))
    event.add("dtstart", invite.start.astimezone(tz))
    event.add("dtend", invite.end.astimezone(tz))
    event.add("summary", invite.summary)
    event.add("sequence", invite.sequence)
    if invite.location:
        event.add("location", invite.location)
    if invite.description:
        event.add("description", invite.description)
    organizer = icalendar.vCalAddress(f"mailto:{invite.organizer_email}")
    organizer.params["cn"] = icalendar.vText(invite.organizer_name)
    event.add("organizer", organizer)
    if invite.attendee_email:
        attendee = icalendar.vCalAddress(f"mailto:{invite.attendee_email}")
        attendee.params["role"] = icalendar.vText("REQ-PARTICIPANT")
        attendee.params["partstat"] = icalendar.vText("NEEDS-ACTION")
        event.add("attendee", attendee)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    cal.add_component(event)
    cal.add_missing_timezones()
    data: bytes = cal.to_ical()
    return data
