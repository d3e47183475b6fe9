"""The post-call summary (R-3.2)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.support.scenarios import load_profile
from voicedesk.dialogue.engine import CallerContext
from voicedesk.dialogue.memory_tools import InMemoryDialogueTools
from voicedesk.dialogue.rules import RuleEngine
from voicedesk.dialogue.summary import summarize

PROFILES = Path(__file__).resolve().parents[2] / "scenarios" / "profiles"


@pytest.mark.req("R-3.2")
async def test_summary_of_a_booking_in_the_call_language() -> None:
    profile = load_profile(PROFILES / "praxis.yaml")
    now = dt.datetime(2026, 11, 30, 9, 0, tzinfo=profile.tz)
    ctx = CallerContext(profile=profile, language="de", now=now, caller_number="+4917112345678")
    conversation = RuleEngine().open(ctx, InMemoryDialogueTools(profile, now=now))
    await conversation.greet()
    for line in ("Impfung am Donnerstag um 10 Uhr", "ja", "Anna Müller", "ja", "nein danke"):
        await conversation.respond(line)
    summary = summarize(conversation)
    assert summary.language == "de"
    assert summary.reason == "Terminwunsch"
    assert summary.outcome == "Termin gebucht: Impfung am Donnerstag, den 3. Dezember um 10 Uhr"
    assert summary.appointment is not None and summary.appointment["service"] == "vaccination"
    assert summary.message is None
    assert summary.sentiment is None  # off unless the tenant switched it on
    assert summary.text.startswith("Anliegen: Terminwunsch. Ergebnis: Termin gebucht")


@pytest.mark.req("R-3.2")
async def test_summary_lists_callback_follow_up_and_sentiment_when_enabled() -> None:
    profile = load_profile(PROFILES / "garage.yaml").model_copy(update={"sentiment_analysis": True})
    now = dt.datetime(2026, 11, 30, 9, 0, tzinfo=profile.tz)
    ctx = CallerContext(profile=profile, language="en", now=now, caller_number="+447700900456")
    conversation = RuleEngine().open(ctx, InMemoryDialogueTools(profile, now=now))
    for line in ("This useless machine is stupid", "leave a message", "the brakes are terrible", "Tom Baker", "yes"):
        await conversation.respond(line)
    summary = summarize(conversation.log)
    assert summary.reason == "message / callback request"
    assert summary.outcome == "message taken"
    assert summary.follow_ups == ("call back on +447700900456",)
    assert summary.sentiment == "negative"
