"""The LLM engine against a scripted chat-completions server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from tests.support.fake_llm import FakeLlm, calls, fails, first_offered_start, says, serve_fake_llm, stalls
from tests.support.scenarios import load_profile
from voicedesk.dialogue.engine import CallerContext
from voicedesk.dialogue.llm import LlmEngine, LlmSettings
from voicedesk.dialogue.memory_tools import InMemoryDialogueTools
from voicedesk.domain.errors import ErrorCategory
from voicedesk.domain.profile import TenantProfile

PROFILES = Path(__file__).resolve().parents[2] / "scenarios" / "profiles"
CALLER = "+4917112345678"


@pytest.fixture
def profile() -> TenantProfile:
    return load_profile(PROFILES / "praxis.yaml")


def _ctx(profile: TenantProfile) -> CallerContext:
    now = dt.datetime(2026, 11, 30, 9, 0, tzinfo=profile.tz)
    return CallerContext(profile=profile, language="de", now=now, caller_number=CALLER)


@pytest.mark.req("R-4.1")
@pytest.mark.req("R-3.4")
@pytest.mark.req("R-12.1")
async def test_llm_books_an_appointment_through_tool_calls(profile: TenantProfile) -> None:
    fake = FakeLlm.script(
        calls("find_slots", {"service_id": "vaccination", "when": "morgen um 10"}),
        says("Morgen, Dienstag, um 10 Uhr ist frei. Auf welchen Namen darf ich buchen?"),
        says("Impfung am Dienstag, den 1. Dezember um 10 Uhr für Anna Müller. Soll ich das buchen?"),
        calls(
            "book",
            lambda body: {"service_id": "vaccination", "start": first_offered_start(body), "name": "Anna Müller"},
        ),
        says("Erledigt, Ihr Termin ist eingetragen. Kann ich sonst noch helfen?"),
    )
    ctx = _ctx(profile)
    tools = InMemoryDialogueTools(profile, now=ctx.now)
    async with serve_fake_llm(fake) as base_url:
        engine = LlmEngine(LlmSettings(base_url=base_url, model="gpt-test", api_key="sk-test", provider="openai"))
        conversation = engine.open(ctx, tools)
        await conversation.greet()
        offer = await conversation.respond("Ich möchte morgen um 10 eine Impfung")
        confirm = await conversation.respond("Anna Müller")
        done = await conversation.respond("Ja, bitte")
        await conversation.aclose()

    assert offer.intent == "book"
    assert confirm.expects == "yes_no"
    assert [a.type for a in done.actions] == ["book"]
    assert done.appointment is not None
    assert done.appointment["start"] == "2026-12-01T10:00:00+01:00"
    assert [(a.service_id, a.name, a.start.isoformat()) for a in tools.appointments] == [
        ("vaccination", "Anna Müller", "2026-12-01T10:00:00+01:00")
    ]
    assert tools.appointments[0].phone == CALLER
    first = fake.requests[0]
    assert first["store"] is False  # no storage of completions at OpenAI
    assert first["model"] == "gpt-test"
    assert {t["function"]["name"] for t in first["tools"]} >= {"find_slots", "book", "transfer_to_human"}
    assert "Praxis Dr. Berger" in first["messages"][0]["content"]
    assert fake.headers[0]["authorization"] == "Bearer sk-test"
    tool_result = fake.requests[1]["messages"][-1]
    assert tool_result["role"] == "tool"
    assert "2026-12-01T10:00:00+01:00" in tool_result["content"]


@pytest.mark.req("R-12.1")
async def test_local_providers_get_no_vendor_fields(profile: TenantProfile) -> None:
    fake = FakeLlm.script(says("Gern. Wann hätten Sie Zeit?"))
    ctx = _ctx(profile)
    async with serve_fake_llm(fake) as base_url:
        engine = LlmEngine(LlmSettings(base_url=base_url, model="llama", provider="ollama"))
        conversation = engine.open(ctx, InMemoryDialogueTools(profile, now=ctx.now))
        reply = await conversation.respond("Ich brauche einen Termin")
        await conversation.aclose()
    assert reply.text == "Gern. Wann hätten Sie Zeit?"
    assert "store" not in fake.requests[0]
    assert "authorization" not in fake.headers[0]


@pytest.mark.req("R-4.1")
async def test_timeout_falls_back_to_the_rule_engine(profile: TenantProfile) -> None:
    fake = FakeLlm.script(stalls(), stalls())
    ctx = _ctx(profile)
    async with serve_fake_llm(fake) as base_url:
        engine = LlmEngine(LlmSettings(base_url=base_url, model="m", timeout_s=0.3, max_failures=2))
        conversation = engine.open(ctx, InMemoryDialogueTools(profile, now=ctx.now))
        started = time.monotonic()
        reply = await conversation.respond("Wann haben Sie geöffnet?")
        elapsed = time.monotonic() - started
        assert conversation.last_error is not None
        assert conversation.last_error.category is ErrorCategory.TIMEOUT
        degraded_after_one_failure = conversation.degraded
        second = await conversation.respond("Wo kann ich parken?")
        third = await conversation.respond("Und Ihre Adresse?")
        await conversation.aclose()

    assert elapsed < 2.0
    assert not degraded_after_one_failure
    assert reply.intent == "faq"
    assert "Montag" in reply.text
    assert "Parkplätze" in second.text
    assert conversation.degraded  # two failed turns in a row: the rest of the call stays on rules
    assert len(fake.requests) == 2
    assert "Hauptstraße" in third.text


async def test_permanent_error_switches_to_rules_at_once(profile: TenantProfile) -> None:
    fake = FakeLlm.script(fails(401))
    ctx = _ctx(profile)
    async with serve_fake_llm(fake) as base_url:
        engine = LlmEngine(LlmSettings(base_url=base_url, model="m", api_key="wrong"))
        conversation = engine.open(ctx, InMemoryDialogueTools(profile, now=ctx.now))
        reply = await conversation.respond("Ich möchte mit einem Mitarbeiter sprechen")
        await conversation.aclose()
    assert conversation.last_error is not None
    assert conversation.last_error.category is ErrorCategory.AUTH
    assert conversation.degraded
    assert reply.transfer is not None


@pytest.mark.req("R-12.2")
async def test_model_hands_decisions_to_a_human(profile: TenantProfile) -> None:
    fake = FakeLlm.script(
        calls("transfer_to_human", {"reason": "decision_needed", "summary": "Fragt nach der Dosis eines Medikaments."}),
        says("Das klärt eine Ärztin mit Ihnen, ich verbinde Sie."),
    )
    ctx = _ctx(profile)
    async with serve_fake_llm(fake) as base_url:
        engine = LlmEngine(LlmSettings(base_url=base_url, model="m"))
        conversation = engine.open(ctx, InMemoryDialogueTools(profile, now=ctx.now))
        reply = await conversation.respond("Soll ich die Dosis verdoppeln?")
        await conversation.aclose()
    assert reply.intent == "human"
    assert reply.transfer is not None
    assert dict(reply.transfer.data) == {
        "mode": "warm",
        "target": None,
        "summary": "Fragt nach der Dosis eines Medikaments.",
    }
    assert "never give or decide medical" in fake.requests[0]["messages"][0]["content"].lower()


async def test_a_booking_made_before_a_failure_is_still_reported(profile: TenantProfile) -> None:
    fake = FakeLlm.script(
        calls("find_slots", {"service_id": "checkup", "when": "Donnerstag um 10"}),
        says("Donnerstag um 10 Uhr ist frei. Soll ich für Anna Müller buchen?"),
        calls(
            "book", lambda body: {"service_id": "checkup", "start": first_offered_start(body), "name": "Anna Müller"}
        ),
        fails(500),
    )
    ctx = _ctx(profile)
    tools = InMemoryDialogueTools(profile, now=ctx.now)
    async with serve_fake_llm(fake) as base_url:
        engine = LlmEngine(LlmSettings(base_url=base_url, model="m"))
        conversation = engine.open(ctx, tools)
        await conversation.respond("Vorsorge am Donnerstag um 10, Anna Müller")
        reply = await conversation.respond("ja")
        await conversation.aclose()
    assert conversation.last_error is not None
    assert conversation.last_error.category is ErrorCategory.SERVER
    assert [a.type for a in reply.actions][:1] == ["book"]
    assert len(tools.appointments) == 1
