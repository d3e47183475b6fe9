"""``voicedesk chat``: the JSONL contract of issue 4 as a real process, and the scenario suite over the store.

The process test runs ``python -m voicedesk init --demo`` and ``chat --jsonl`` against a temp
data dir (SQLite, or PostgreSQL in its own schema when the suite runs with
``VOICEDESK_TEST_DATABASE_URL``) and checks the lines and the booked row afterwards. The
scenario test drives the same ``open_chat`` code path in-process (one process per scenario
would take minutes) with ``StoreDialogueTools`` on the real database.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import select
from tests.support.scenarios import Scenario, check_outcome, load_scenarios

from voicedesk.appointments.service import do_place_appointment, split_name
from voicedesk.bootstrap import open_vault
from voicedesk.cli.chat import open_chat, parse_now
from voicedesk.clock import FixedClock
from voicedesk.config import Settings
from voicedesk.dialogue.rules import RuleEngine
from voicedesk.store.models import Appointment, AppointmentEvent, Contact
from voicedesk.store.repos import subjects as subject_repo
from voicedesk.store.vault import Vault
from voicedesk.tenancy.service import do_create_tenant

INTENTS = {None, "book", "cancel", "reschedule", "faq", "message", "human", "goodbye", "dsar", "other"}
ACTIONS = {"book", "cancel", "reschedule", "message", "transfer", "end_call", "dsar"}


def _env(settings: Settings) -> dict[str, str]:
    assert settings.master_key is not None
    env = {**os.environ, "VOICEDESK_DATA_DIR": str(settings.data_dir), "VOICEDESK_JOBS_ENABLED": "false",
           "VOICEDESK_MASTER_KEY": settings.master_key.get_secret_value(), "NO_COLOR": "1"}
    if settings.database_url:
        env["VOICEDESK_DATABASE_URL"] = settings.database_url
        env["VOICEDESK_DATABASE_SCHEMA"] = settings.database_schema or ""
        env["VOICEDESK_KEYSTORE_SCHEMA"] = settings.keystore_schema
    return env


def _vd(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "voicedesk", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.mark.req("R-3.4")
@pytest.mark.req("R-4.1")
async def test_chat_jsonl_books_a_real_appointment(settings: Settings) -> None:
    env = _env(settings)
    init = _vd(env, "init", "--demo")
    assert init.returncode == 0, init.stderr
    lines = ["Ich brauche einen Termin für eine Sprechstunde", "", "morgen um 9", "ja", "Anna Schulz", "ja",
             "nein danke"]
    result = _vd(env, "chat", "--tenant", "praxis-mueller", "--jsonl", "--now", "2026-11-25T10:00",
                 "--caller", "+4917611112222", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == len(lines) + 1  # greeting first, then one line per input line
    assert out[0]["intent"] is None and "Müller" in out[0]["reply"]
    for obj in out:
        assert {"reply", "intent", "understood", "actions", "appointment"} <= obj.keys()
        assert obj["intent"] in INTENTS
        assert {a["type"] for a in obj["actions"]} <= ACTIONS
    books = [a for obj in out for a in obj["actions"] if a["type"] == "book"]
    assert len(books) == 1
    booked = next(obj["appointment"] for obj in out if obj["appointment"])
    assert booked.keys() == {"id", "service", "staff", "start", "end", "status"}
    assert (booked["service"], booked["start"], booked["end"], booked["status"]) == (
        "consultation", "2026-11-26T09:00:00+01:00", "2026-11-26T09:15:00+01:00", "booked")
    assert out[-1]["intent"] == "goodbye" and out[-1]["actions"] == [{"type": "end_call"}]

    vault = await open_vault(settings)
    try:
        async with vault.db.sessions() as s:
            row = (await s.scalars(select(Appointment))).one()
            contact = (await s.scalars(select(Contact))).one()
            events = list((await s.scalars(select(AppointmentEvent))).all())
            data = await subject_repo.read_contact(vault.keys, contact)
        assert str(row.id) == booked["id"] and row.status == "booked"
        assert row.start_at == dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)
        assert (data.display_name, data.phone) == ("Anna Schulz", "+4917611112222")
        assert [(e.kind, e.actor) for e in events] == [("booked", "chat")]
    finally:
        await vault.close()

    # the same caller calls again and is greeted by name; the booking is found and cancelled
    again = _vd(env, "chat", "--tenant", "praxis-mueller", "--jsonl", "--now", "2026-11-25T11:00",
                "--caller", "+4917611112222", "--lang", "en",
                stdin="I want to cancel my appointment\nyes\n")
    assert again.returncode == 0, again.stderr
    replies = [json.loads(line) for line in again.stdout.splitlines()]
    assert len(replies) == 3
    assert "Anna Schulz" in replies[0]["reply"] or "Schulz" in replies[0]["reply"]
    cancels = [a for obj in replies for a in obj["actions"] if a["type"] == "cancel"]
    assert [c["id"] for c in cancels] == [booked["id"]]


def test_chat_rejects_unknown_tenant_and_bad_now(settings: Settings) -> None:
    env = _env(settings)
    assert _vd(env, "init").returncode == 0
    missing = _vd(env, "chat", "--tenant", "nobody", "--jsonl")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr and "nobody" in missing.stderr
    assert _vd(env, "init", "--demo").returncode == 0
    bad = _vd(env, "chat", "--tenant", "praxis-mueller", "--jsonl", "--now", "tomorrow")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "--now" in bad.stderr


def test_now_without_offset_is_tenant_local() -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    assert parse_now("2026-03-29T03:30", berlin).utcoffset() == dt.timedelta(hours=2)
    assert parse_now("2026-11-25T10:00+00:00", berlin).hour == 10


# --- the scenario suite over the database --------------------------------------------------------


async def _run_over_store(vault: Vault, clock: FixedClock, scenario: Scenario, n: int) -> list[dict[str, Any]]:
    profile = scenario.profile.model_copy(update={"slug": f"s{n}-{scenario.profile.slug}"[:63],
                                                  "twilio_numbers": [], "number_languages": {}})
    clock.at = scenario.now.astimezone(dt.UTC)
    tenant = await do_create_tenant(vault, profile, actor="test")
    for item in scenario.existing:
        await do_place_appointment(vault, tenant.id, item.service, item.start, end=item.end, staff=item.staff,
                                   name=item.name, phone=item.phone, actor="test")
    if scenario.known_name is not None and scenario.caller is not None:
        # a recognised caller is someone the database knows by number (the real recognition path)
        now = clock.now()
        async with vault.db.transaction() as s:
            subject = await subject_repo.add_subject(s, vault.keys, tenant.id, now=now, phone=scenario.caller)
            await subject_repo.upsert_contact(s, vault.keys, subject, split_name(scenario.known_name), now)
    session = await open_chat(vault, slug=profile.slug, engine=RuleEngine(), now=scenario.now,
                              language=scenario.language, caller=scenario.caller)
    if scenario.known_name is not None and scenario.caller is not None:
        assert session.ctx.known_name == scenario.known_name
    replies = [await session.greet()]
    for line in scenario.lines:
        replies.append(await session.respond(line))
    return replies


@pytest.mark.req("R-4.1")
@pytest.mark.req("R-3.4")
async def test_scenario_suite_through_the_chat_path_on_the_database(vault: Vault, clock: FixedClock,
                                                                    backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the scenario suite runs once, on SQLite; the store itself is tested on both")
    scenarios = load_scenarios("de", "en")
    if not scenarios:
        pytest.skip("no scenario files yet")
    failures: list[str] = []
    for n, scenario in enumerate(scenarios):
        replies = await _run_over_store(vault, clock, scenario, n)
        problems = check_outcome(scenario, replies)
        if problems:
            failures.append(f"{scenario.id}: {'; '.join(problems)}")
    passed = len(scenarios) - len(failures)
    assert passed / len(scenarios) >= 0.95, f"{passed}/{len(scenarios)} passed\n" + "\n".join(failures)
