"""Scripted phone conversations as data: load them, run them, check the outcome.

A scenario file (``tests/scenarios/{de,en}/*.yaml``)::

    description: books a check-up on a fully booked Wednesday, gets Thursday
    profile: praxis.yaml              # under tests/scenarios/profiles/
    language: de
    now: "2026-11-30T09:00"           # tenant-local time unless an offset is given
    caller: "+4917112345678"          # the caller's number, null when withheld
    known_name: null                  # a recognised caller's name
    existing:                         # appointments set up before the call
      - {service: checkup, start: "2026-12-02T08:00", end: "2026-12-02T12:00", name: Block}
    lines: ["Ich brauche einen Termin", "", "Mittwoch"]   # "" is silence
    expect:
      booked: {service: checkup, start: "2026-12-03T08:00"}
      cancelled: {start: "2026-12-01T10:00"}            # or: true
      rescheduled: {start: "2026-12-03T09:00"}
      message: {phone: "+491711234567", urgency: high, reason_contains: Rezept}
      transfer: {mode: warm}                            # or: true
      faq_contains: ["8 Uhr"]
      dsar: {kind: erasure}
      ended: true                                       # the last reply ends the call
      absent: [book, transfer]                          # action types that must not occur

Outcomes are checked on the replies in the ``voicedesk chat --jsonl`` shape (see
``voicedesk.dialogue.engine.reply_to_json``), so the same files can be run through the
CLI: feed ``lines`` on stdin, parse stdout, call ``check_outcome(scenario, replies)``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from voicedesk.dialogue.engine import CallerContext, DialogueEngine, reply_to_json
from voicedesk.dialogue.memory_tools import InMemoryDialogueTools
from voicedesk.domain.profile import Language, TenantProfile, parse_profile

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
PROFILE_DIR = SCENARIO_DIR / "profiles"


@dataclasses.dataclass(frozen=True)
class ExistingAppointment:
    service: str
    start: dt.datetime
    end: dt.datetime | None = None
    staff: str | None = None
    name: str | None = None
    phone: str | None = None


@dataclasses.dataclass(frozen=True)
class Scenario:
    id: str
    path: Path
    description: str
    profile_path: Path
    profile: TenantProfile
    language: Language
    now: dt.datetime
    caller: str | None
    known_name: str | None
    existing: tuple[ExistingAppointment, ...]
    lines: tuple[str, ...]
    expect: Mapping[str, Any]


@dataclasses.dataclass
class ScenarioResult:
    scenario: Scenario
    replies: list[dict[str, Any]]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def transcript(self) -> str:
        out = [f"--- {self.scenario.id}: {self.scenario.description}"]
        out.append(f"A: {self.replies[0]['reply']}" if self.replies else "A: (no greeting)")
        for line, reply in zip(self.scenario.lines, self.replies[1:], strict=False):
            out.append(f"C: {line or '(silence)'}")
            actions = ", ".join(a["type"] for a in reply["actions"])
            out.append(f"A: {reply['reply']}  [{reply['intent']}{'; ' + actions if actions else ''}]")
        out.extend(f"  ! {p}" for p in self.problems)
        return "\n".join(out)


_profiles: dict[Path, TenantProfile] = {}


def load_profile(path: Path) -> TenantProfile:
    if path not in _profiles:
        _profiles[path] = parse_profile(yaml.safe_load(path.read_text(encoding="utf-8")))
    return _profiles[path]


def local_time(value: object, tz: dt.tzinfo) -> dt.datetime:
    """An ISO-8601 string (or YAML datetime): naive means tenant-local, like ``chat --now``."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


def load_scenario(path: Path) -> Scenario:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    profile_path = PROFILE_DIR / str(data["profile"])
    profile = load_profile(profile_path)
    tz = profile.tz
    existing = tuple(
        ExistingAppointment(
            service=str(item["service"]),
            start=local_time(item["start"], tz),
            end=local_time(item["end"], tz) if item.get("end") else None,
            staff=item.get("staff"),
            name=item.get("name"),
            phone=item.get("phone"),
        )
        for item in data.get("existing") or []
    )
    return Scenario(
        id=f"{path.parent.name}/{path.stem}",
        path=path,
        description=str(data.get("description", "")),
        profile_path=profile_path,
        profile=profile,
        language=data.get("language", profile.language),
        now=local_time(data["now"], tz),
        caller=data.get("caller"),
        known_name=data.get("known_name"),
        existing=existing,
        lines=tuple("" if line is None else str(line) for line in data["lines"]),
        expect=data.get("expect") or {},
    )


def load_scenarios(*languages: str) -> list[Scenario]:
    paths = sorted(p for lang in languages for p in (SCENARIO_DIR / lang).glob("*.yaml"))
    return [load_scenario(p) for p in paths]


def _actions(replies: Sequence[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return [a for r in replies for a in r.get("actions", []) if a.get("type") == kind]


def _same_time(value: object, expected: object, tz: dt.tzinfo) -> bool:
    if value is None:
        return False
    return local_time(value, tz) == local_time(expected, tz)


def check_outcome(scenario: Scenario, replies: Sequence[Mapping[str, Any]]) -> list[str]:
    """What differs between the expected outcome and ``replies`` (JSONL-shaped); [] if none."""
    tz = scenario.profile.tz
    expect = scenario.expect
    problems: list[str] = []

    booked = expect.get("booked")
    if booked:
        books = _actions(replies, "book")
        if not any(
            a.get("service") == booked["service"] and _same_time(a.get("start"), booked["start"], tz) for a in books
        ):
            got = [(a.get("service"), a.get("start")) for a in books]
            problems.append(f"expected booking {booked['service']} at {booked['start']}, got {got}")
    cancelled = expect.get("cancelled")
    if cancelled:
        cancels = _actions(replies, "cancel")
        if not cancels:
            problems.append("expected a cancellation, got none")
        elif isinstance(cancelled, Mapping) and not any(
            _same_time(a.get("start"), cancelled["start"], tz) for a in cancels
        ):
            problems.append(f"expected the appointment at {cancelled['start']} cancelled, got {cancels}")
    rescheduled = expect.get("rescheduled")
    if rescheduled:
        moves = _actions(replies, "reschedule")
        if not any(_same_time(a.get("start"), rescheduled["start"], tz) for a in moves):
            problems.append(f"expected a move to {rescheduled['start']}, got {[a.get('start') for a in moves]}")
    message = expect.get("message")
    if message:
        messages = _actions(replies, "message")
        if not messages:
            problems.append("expected a message, got none")
        else:
            last = messages[-1]
            spec = message if isinstance(message, Mapping) else {}
            if "phone" in spec and last.get("phone") != spec["phone"]:
                problems.append(f"expected message phone {spec['phone']}, got {last.get('phone')}")
            if "urgency" in spec and last.get("urgency") != spec["urgency"]:
                problems.append(f"expected urgency {spec['urgency']}, got {last.get('urgency')}")
            if "name" in spec and last.get("name") != spec["name"]:
                problems.append(f"expected message name {spec['name']}, got {last.get('name')}")
            wanted = spec.get("reason_contains")
            if wanted and str(wanted).lower() not in str(last.get("reason", "")).lower():
                problems.append(f"expected reason containing {wanted!r}, got {last.get('reason')!r}")
    transfer = expect.get("transfer")
    if transfer:
        transfers = _actions(replies, "transfer")
        if not transfers:
            problems.append("expected a transfer, got none")
        elif isinstance(transfer, Mapping) and "mode" in transfer and transfers[-1].get("mode") != transfer["mode"]:
            problems.append(f"expected transfer mode {transfer['mode']}, got {transfers[-1].get('mode')}")
    for text in expect.get("faq_contains") or []:
        if not any(r.get("intent") == "faq" and str(text).lower() in str(r.get("reply", "")).lower() for r in replies):
            problems.append(f"expected an FAQ answer containing {text!r}")
    for text in expect.get("reply_contains") or []:
        if not any(str(text).lower() in str(r.get("reply", "")).lower() for r in replies[1:]):
            problems.append(f"expected a reply containing {text!r}")
    dsar = expect.get("dsar")
    if dsar:
        requests = _actions(replies, "dsar")
        if not requests:
            problems.append("expected a data-subject request, got none")
        elif isinstance(dsar, Mapping) and "kind" in dsar and requests[-1].get("kind") != dsar["kind"]:
            problems.append(f"expected request kind {dsar['kind']}, got {requests[-1].get('kind')}")
    if expect.get("ended") and not (replies and any(a.get("type") == "end_call" for a in replies[-1]["actions"])):
        problems.append("expected the call to end with the last reply")
    for kind in expect.get("absent") or []:
        if _actions(replies, kind):
            problems.append(f"expected no {kind} action, got {_actions(replies, kind)}")
    return problems


def make_tools(scenario: Scenario) -> InMemoryDialogueTools:
    tools = InMemoryDialogueTools(scenario.profile, now=scenario.now)
    for item in scenario.existing:
        tools.add_appointment(
            item.service, item.start, staff=item.staff, end=item.end, name=item.name, phone=item.phone
        )
    return tools


async def run_scenario(
    scenario: Scenario, engine: DialogueEngine, *, tools: InMemoryDialogueTools | None = None
) -> ScenarioResult:
    """Run the caller lines through ``engine`` with in-memory tools and check the outcome."""
    tools = tools or make_tools(scenario)
    ctx = CallerContext(
        profile=scenario.profile,
        language=scenario.language,
        now=scenario.now,
        caller_number=scenario.caller,
        known_name=scenario.known_name,
        channel="phone",
    )
    conversation = engine.open(ctx, tools)
    replies = [reply_to_json(await conversation.greet())]
    for line in scenario.lines:
        replies.append(reply_to_json(await conversation.respond(line)))
    return ScenarioResult(scenario, replies, check_outcome(scenario, replies))
