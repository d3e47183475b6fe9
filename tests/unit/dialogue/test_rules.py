"""The rule engine, turn by turn: what it says, expects and does."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.support.scenarios import load_profile
from voicedesk.dialogue.engine import CallerContext, Reply
from voicedesk.dialogue.memory_tools import InMemoryDialogueTools
from voicedesk.dialogue.rules import RuleConversation, RuleEngine
from voicedesk.domain.profile import Language, TenantProfile

PROFILES = Path(__file__).resolve().parents[2] / "scenarios" / "profiles"
CALLER = "+4917112345678"


def _open(
    name: str = "praxis",
    *,
    language: Language = "de",
    caller: str | None = CALLER,
    known_name: str | None = None,
) -> tuple[RuleConversation, InMemoryDialogueTools, TenantProfile]:
    profile = load_profile(PROFILES / f"{name}.yaml")
    now = dt.datetime(2026, 11, 30, 9, 0, tzinfo=profile.tz)
    tools = InMemoryDialogueTools(profile, now=now)
    ctx = CallerContext(profile=profile, language=language, now=now, caller_number=caller, known_name=known_name)
    return RuleEngine().open(ctx, tools), tools, profile


async def _say(conversation: RuleConversation, *lines: str) -> list[Reply]:
    return [await conversation.respond(line) for line in lines]


@pytest.mark.req("R-4.1")
async def test_greets_with_the_business_greeting_and_a_known_caller_by_name() -> None:
    conversation, _, _ = _open(known_name="Anna Müller")
    greeting = await conversation.greet()
    assert greeting.text == "Hallo Anna Müller! Praxis Dr. Berger, guten Tag. Wie kann ich Ihnen helfen?"
    assert greeting.intent is None
    anonymous, _, _ = _open()
    assert (await anonymous.greet()).text == "Praxis Dr. Berger, guten Tag. Wie kann ich Ihnen helfen?"


@pytest.mark.req("R-3.4")
async def test_booking_reads_back_date_time_service_and_name_before_booking() -> None:
    conversation, tools, _ = _open()
    offer, ask_name, confirm = await _say(
        conversation, "Ich hätte gern eine Vorsorgeuntersuchung am Dienstag um 15 Uhr", "ja", "Anna Müller"
    )
    assert offer.text == "Ich hätte morgen, Dienstag, den 1. Dezember um 15 Uhr frei. Passt Ihnen das?"
    assert offer.expects == "yes_no"
    assert ask_name.expects == "name"
    assert confirm.text == (
        "Ich fasse zusammen: Vorsorgeuntersuchung morgen, am Dienstag, den 1. Dezember um 15 Uhr, "
        "auf den Namen Anna Müller. Soll ich das so buchen?"
    )
    assert confirm.expects == "yes_no"
    assert tools.appointments == []  # nothing booked before the caller says yes
    booked = await conversation.respond("ja")
    assert booked.intent == "book"
    assert [a.type for a in booked.actions] == ["book"]
    assert booked.appointment == {
        "id": "apt-1",
        "service": "checkup",
        "staff": "dr-berger",
        "start": "2026-12-01T15:00:00+01:00",
        "end": "2026-12-01T15:30:00+01:00",
        "status": "booked",
    }
    assert tools.appointments[0].name == "Anna Müller"
    assert tools.appointments[0].phone == CALLER


@pytest.mark.req("R-3.4")
async def test_english_read_back_uses_natural_dates() -> None:
    conversation, _, _ = _open("garage", language="en", caller="+447700900456")
    replies = await _say(conversation, "I'd like an MOT on Thursday at 3 pm", "yes", "John Smith")
    assert replies[0].text == "I have Thursday, December 3rd at 3 pm available. Does that suit you?"
    assert replies[2].text == (
        "Let me confirm: MOT test on Thursday, December 3rd at 3 pm, under the name John Smith. Shall I book that?"
    )


@pytest.mark.req("R-3.4")
async def test_a_slot_taken_during_the_call_is_not_double_booked() -> None:
    conversation, tools, profile = _open()
    await _say(conversation, "Impfung am Donnerstag um 10 Uhr", "ja", "Eva Klein")
    await tools.book(
        "vaccination", dt.datetime(2026, 12, 3, 10, 0, tzinfo=profile.tz), staff=None, name="Other", phone=None
    )
    reply = await conversation.respond("ja")
    assert reply.actions == ()
    assert reply.text.startswith("Dieser Termin wurde gerade vergeben, das tut mir leid.")
    assert reply.expects == "yes_no"
    assert len(tools.appointments) == 1


async def test_wie_bitte_repeats_the_last_reply() -> None:
    conversation, _, _ = _open()
    question = await conversation.respond("Ich brauche einen Termin für eine Impfung")
    again = await conversation.respond("Wie bitte?")
    assert again.text == question.text
    assert again.expects == question.expects


async def test_silence_prompts_then_offers_help_then_ends_politely() -> None:
    conversation, _, _ = _open()
    first, second, third = await _say(conversation, "", "", "")
    assert first.text == "Sind Sie noch da? Wie kann ich Ihnen helfen?"
    assert "Mitarbeiter" in second.text and "Nachricht" in second.text
    assert not second.end_call
    assert third.end_call
    assert "Auf Wiederhören" in third.text


@pytest.mark.req("R-4.1")
async def test_two_failed_attempts_offer_a_message_or_a_human() -> None:
    conversation, _, _ = _open()
    replies = await _say(conversation, "Ich brauche einen Termin", "Haartransplantation", "Haartransplantation")
    assert replies[1].text.startswith("Das bieten wir leider nicht an.")
    assert replies[2].text == (
        "Soll ich Sie mit einem Mitarbeiter verbinden, oder möchten Sie eine Nachricht hinterlassen?"
    )
    transfer = await conversation.respond("ja, verbinden Sie mich")
    assert transfer.transfer is not None
    assert transfer.transfer.data["mode"] == "warm"


@pytest.mark.req("R-4.1")
async def test_transfer_on_request_carries_a_one_sentence_summary() -> None:
    conversation, _, _ = _open(known_name="Anna Müller")
    reply = await conversation.respond("Ich möchte bitte mit einem Mitarbeiter sprechen")
    assert reply.intent == "human"
    assert reply.transfer is not None
    assert dict(reply.transfer.data) == {
        "mode": "cold",
        "target": None,
        "summary": "Anna Müller (+4917112345678) möchte mit einem Mitarbeiter sprechen.",
    }


@pytest.mark.req("R-4.1")
async def test_without_forwarding_number_a_message_is_taken_instead() -> None:
    conversation, tools, _ = _open("salon")
    replies = await _say(
        conversation, "Kann ich bitte mit einem Menschen sprechen?", "Es geht um meinen Gutschein", "Clara Roth", "ja"
    )
    assert all(r.transfer is None for r in replies)
    assert replies[0].text.startswith("Ich kann Sie gerade leider nicht verbinden")
    assert [a.type for a in replies[-1].actions] == ["message"]
    assert [(m.name, m.phone, m.reason) for m in tools.messages] == [
        ("Clara Roth", CALLER, "Es geht um meinen Gutschein")
    ]


@pytest.mark.req("R-4.1")
async def test_when_nobody_picks_up_the_caller_can_leave_a_message() -> None:
    conversation, tools, _ = _open()
    await conversation.respond("Verbinden Sie mich mit der Rezeption")
    fallback = await conversation.transfer_failed("no-answer")
    assert fallback.text == "Leider ist gerade niemand erreichbar. Gern nehme ich eine Nachricht auf. Worum geht es?"
    await _say(conversation, "Ich brauche eine Bescheinigung", "Peter Lang", "ja")
    assert [(m.name, m.phone) for m in tools.messages] == [("Peter Lang", CALLER)]


@pytest.mark.req("R-4.1")
async def test_message_with_spoken_digits_is_read_back_and_stored_in_e164() -> None:
    conversation, tools, _ = _open(caller=None)
    replies = await _say(
        conversation,
        "Ich möchte eine Nachricht hinterlassen",
        "Bitte um Rückruf wegen meiner Rechnung, dringend",
        "Mein Name ist Peter Lang",
        "null eins sieben eins, zwei drei vier fünf sechs sieben acht",
    )
    assert replies[-1].text == "Ich habe die Nummer 0 1 7 1, 2 3 4 5 6 7 8 notiert. Stimmt das?"
    assert replies[-1].expects == "yes_no"
    await conversation.respond("ja")
    assert [(m.phone, m.urgency) for m in tools.messages] == [("+491712345678", "high")]


@pytest.mark.req("R-12.2")
@pytest.mark.parametrize(
    ("line", "category_word"),
    [
        ("Soll ich meine Tabletten absetzen?", "medizinische"),
        ("Ich will mich über Ihre Rechnung beschweren", "beschweren"),
        ("Mein Anwalt meldet sich bei Ihnen", "rechtliche"),
    ],
)
async def test_decisions_are_never_taken_but_handed_to_a_human(line: str, category_word: str) -> None:
    conversation, tools, _ = _open()
    reply = await conversation.respond(line)
    assert reply.text.startswith("Das kann ich nicht selbst entscheiden")
    assert reply.transfer is not None
    assert reply.transfer.data["mode"] == "warm"
    assert category_word in reply.transfer.data["summary"]
    assert tools.appointments == [] and tools.messages == []


@pytest.mark.req("R-8.7")
@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("Bitte löschen Sie meine Daten", "erasure"),
        ("Welche Daten haben Sie über mich gespeichert?", "access"),
        ("Meine Daten sind falsch, bitte berichtigen", "rectification"),
    ],
)
async def test_privacy_requests_during_the_call_are_recorded(line: str, kind: str) -> None:
    conversation, tools, _ = _open()
    reply = await conversation.respond(line)
    assert reply.intent == "dsar"
    assert [(r.kind, r.phone) for r in tools.dsar_requests] == [(kind, CALLER)]
    assert [a.type for a in reply.actions] == ["dsar"]
    assert "innerhalb eines Monats" in reply.text


@pytest.mark.req("R-8.7")
async def test_privacy_request_with_withheld_number_asks_for_a_contact() -> None:
    conversation, tools, _ = _open("garage", language="en", caller=None)
    ask = await conversation.respond("Please delete my data")
    assert tools.dsar_requests == []
    assert "e-mail" in ask.text
    await conversation.respond("tom dot baker at gmail dot com")
    assert [(r.kind, r.email) for r in tools.dsar_requests] == [("erasure", "tom.baker@gmail.com")]


@pytest.mark.req("R-4.1")
async def test_faq_from_the_profile() -> None:
    conversation, _, _ = _open()
    hours, address, price = await _say(
        conversation, "Wann haben Sie geöffnet?", "Wie ist Ihre Adresse?", "Was kostet eine Impfung?"
    )
    assert hours.intent == "faq"
    assert hours.text.startswith("Unsere Öffnungszeiten: Montag und Dienstag von 8 bis 12 Uhr")
    assert address.text.startswith("Sie finden uns hier: Hauptstraße 5, 60311 Frankfurt am Main.")
    assert price.text.startswith("Impfung kostet 25 Euro.")


async def test_question_in_the_middle_of_a_booking_is_answered_and_the_booking_continues() -> None:
    conversation, _, _ = _open()
    await conversation.respond("Ich brauche einen Termin für eine Impfung")
    answer = await conversation.respond("Wo kann ich denn parken?")
    assert answer.text == "Direkt hinter dem Haus gibt es vier Parkplätze für Patienten. Wann hätten Sie denn Zeit?"
    offer = await conversation.respond("Morgen um 9")
    assert offer.intent == "book"
    assert "1. Dezember um 9 Uhr" in offer.text


async def test_correction_at_read_back_changes_only_the_time() -> None:
    conversation, tools, _ = _open()
    await _say(conversation, "Impfung am Freitag um 11", "ja", "Jonas Berg")
    offer = await conversation.respond("nein, lieber um 12 Uhr")
    assert "Freitag, den 4. Dezember um 12 Uhr" in offer.text
    await _say(conversation, "ja", "ja")
    assert tools.appointments[0].start.isoformat() == "2026-12-04T12:00:00+01:00"


async def test_barge_in_keeps_what_the_caller_heard_in_the_log() -> None:
    conversation, _, _ = _open()
    await conversation.greet()
    conversation.heard("Praxis Dr. Berger, guten Tag.")
    assert conversation.log.turns[-1].text == "Praxis Dr. Berger, guten Tag."


async def test_goodbye_ends_the_call() -> None:
    conversation, _, _ = _open("garage", language="en")
    reply = await conversation.respond("that's all, goodbye")
    assert reply.intent == "goodbye"
    assert reply.end_call


@pytest.mark.req("R-3.4")
async def test_later_moves_to_a_later_offer_and_yes_thats_it_confirms() -> None:
    conversation, tools, _ = _open("garage", language="en", caller="+447700900456")
    replies = await _say(
        conversation,
        "I'd like a tyre change on Wednesday afternoon",
        "anything later?",
        "yes that's it",
        "Tom Baker",
        "yes, that's it",
    )
    assert replies[0].text == "I have Wednesday, December 2nd at 1 pm available. Does that suit you?"
    assert replies[1].text == "How about 2 pm?"
    assert not any(r.end_call for r in replies)
    assert [a.start.isoformat() for a in tools.appointments] == ["2026-12-02T14:00:00+00:00"]


@pytest.mark.req("R-12.2")
async def test_failed_handover_of_a_decision_keeps_the_question_as_the_message() -> None:
    conversation, tools, _ = _open()
    await conversation.respond("Soll ich meine Tabletten absetzen?")
    fallback = await conversation.transfer_failed("busy")
    assert fallback.text == "Leider ist gerade niemand erreichbar. Wie ist Ihr Name, bitte?"
    await _say(conversation, "Eva Klein", "ja")
    assert [(m.name, m.reason, m.phone) for m in tools.messages] == [
        ("Eva Klein", "Soll ich meine Tabletten absetzen?", CALLER)
    ]
