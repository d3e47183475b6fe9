"""The consent gate (R-4.2): lexicons, both modes, keys, silence, withdrawal, records."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from voicedesk.domain.consent import (
    ConsentGate,
    ConsentTexts,
    GateState,
    GateStep,
    classify_answer,
    is_objection,
)

pytestmark = pytest.mark.req("R-4.2")

AT = dt.datetime(2025, 3, 4, 9, 0, tzinfo=dt.UTC)
TEXTS = ConsentTexts(version="announce-de-3", announcement="Dieser Anruf kann aufgezeichnet werden.",
                     question="Sind Sie einverstanden?")


def asking(max_asks: int = 2) -> ConsentGate:
    gate = ConsentGate("ask", TEXTS, max_asks=max_asks)
    assert gate.announcement_played(AT) == GateStep()
    gate.question_played()
    return gate


def summary(step: GateStep) -> list[tuple[str, str, str]]:
    return [(d.purpose, d.decision, d.method) for d in step.decisions]


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Ja.", "yes"), ("Ja, gerne!", "yes"), ("Einverstanden", "yes"), ("in Ordnung", "yes"),
        ("Yes, sure.", "yes"), ("Sure", "yes"), ("Okay.", "yes"), ("of course", "yes"),
        ("Nein.", "no"), ("Lieber nicht.", "no"), ("Nein danke", "no"), ("nicht einverstanden", "no"),
        ("No.", "no"), ("I'd rather not", "no"), ("I don't agree", "no"), ("Nope", "no"),
        ("Bitte nicht aufzeichnen!", "objection"), ("Keine Aufnahme bitte", "objection"),
        ("No recording, please.", "objection"), ("Stop recording", "objection"),
        ("Don’t record this", "objection"), ("I do not want to be recorded", "objection"),
        ("Ja nein", None), ("Ich möchte einen Termin", None), ("", None), ("...", None),
    ],
)
def test_classify_answer_in_german_and_english(text: str, answer: str | None) -> None:
    assert classify_answer(text) == answer


def test_is_objection_finds_the_phrase_inside_a_longer_sentence() -> None:
    assert is_objection("Hallo, ich möchte bitte nicht aufgezeichnet werden.")
    assert is_objection("please STOP RECORDING now")
    assert not is_objection("Ich möchte einen Termin aufnehmen lassen? Nein, buchen.")
    assert not is_objection("yes")


def test_ask_mode_yes_by_voice_grants_both_purposes_with_the_heard_text_hash() -> None:
    gate = asking()
    step = gate.heard("Ja, gerne.", AT)
    assert summary(step) == [("recording", "granted", "voice"), ("transcription", "granted", "voice")]
    assert step.settled and step.consumed and not step.reask
    assert gate.granted and not gate.open and gate.state is GateState.GRANTED
    heard = "Dieser Anruf kann aufgezeichnet werden.\nSind Sie einverstanden?"
    for d in step.decisions:
        assert d.text_version == "announce-de-3"
        assert d.text_sha256 == hashlib.sha256(heard.encode()).hexdigest()
        assert d.at == AT
        assert d.reason == "caller agreed by voice"
    assert gate.decisions == list(step.decisions)


def test_ask_mode_key_1_grants_and_key_2_refuses() -> None:
    gate = asking()
    step = gate.key("1", AT)
    assert summary(step) == [("recording", "granted", "key"), ("transcription", "granted", "key")]
    gate = asking()
    step = gate.key("2", AT)
    assert summary(step) == [("recording", "refused", "key"), ("transcription", "refused", "key")]
    assert step.settled and gate.state is GateState.REFUSED


def test_key_1_counts_even_while_the_announcement_plays() -> None:
    gate = ConsentGate("ask", TEXTS)
    assert gate.key("1", AT).settled
    assert gate.granted


def test_ask_mode_no_by_voice_refuses() -> None:
    gate = asking()
    step = gate.heard("Nein, lieber nicht.", AT)
    assert summary(step) == [("recording", "refused", "voice"), ("transcription", "refused", "voice")]
    assert not gate.granted


def test_unclear_answer_is_reasked_once_then_silence_counts_as_no() -> None:
    gate = asking()
    step = gate.heard("Wie bitte?", AT)
    assert step == GateStep(reask=True, consumed=True)
    gate.question_played()
    step = gate.silence(AT)
    assert summary(step) == [("recording", "refused", "silence"), ("transcription", "refused", "silence")]
    assert step.decisions[0].reason == "no answer after 2 questions; counted as no"


def test_silence_first_reasks_then_an_unclear_answer_counts_as_no() -> None:
    gate = asking()
    assert gate.silence(AT).reask
    gate.question_played()
    step = gate.heard("Hm, was?", AT)
    assert [d.decision for d in step.decisions] == ["refused", "refused"]
    assert step.decisions[0].method == "voice"


def test_a_single_ask_refuses_on_the_first_silence() -> None:
    gate = asking(max_asks=1)
    assert [d.method for d in gate.silence(AT).decisions] == ["silence", "silence"]


def test_announce_mode_grants_by_default_once_the_announcement_played() -> None:
    gate = ConsentGate("announce", TEXTS)
    assert gate.open
    step = gate.announcement_played(AT)
    assert summary(step) == [("recording", "granted", "default"), ("transcription", "granted", "default")]
    assert step.decisions[0].text_sha256 == hashlib.sha256(TEXTS.announcement.encode()).hexdigest()
    assert gate.key("1", AT) == GateStep()  # nothing to agree to any more


def test_announce_mode_objection_during_the_announcement_refuses() -> None:
    gate = ConsentGate("announce", TEXTS)
    step = gate.heard("Keine Aufnahme bitte", AT)
    assert summary(step) == [("recording", "refused", "voice"), ("transcription", "refused", "voice")]
    assert gate.announcement_played(AT) == GateStep()  # stays refused
    assert not gate.granted


def test_withdrawal_after_consent_by_voice_and_key() -> None:
    gate = asking()
    gate.heard("yes", AT)
    step = gate.heard("Bitte nicht aufzeichnen", AT)
    assert summary(step) == [("recording", "withdrawn", "voice"), ("transcription", "withdrawn", "voice")]
    assert not step.settled and gate.state is GateState.WITHDRAWN
    assert gate.key("2", AT) == GateStep(consumed=True)  # already withdrawn: no second record

    gate = ConsentGate("announce", TEXTS)
    gate.announcement_played(AT)
    assert [d.decision for d in gate.key("2", AT).decisions] == ["withdrawn", "withdrawn"]


def test_utterances_after_the_gate_do_not_change_it() -> None:
    gate = asking()
    gate.heard("ja", AT)
    assert gate.heard("nein", AT) == GateStep()
    assert gate.silence(AT) == GateStep()
    assert gate.heard("ja", AT) == GateStep()
    assert gate.granted


def test_answers_before_the_question_wait_for_the_question() -> None:
    gate = ConsentGate("ask", TEXTS)
    assert gate.heard("ja", AT) == GateStep()
    assert gate.silence(AT) == GateStep()
    assert gate.state is GateState.ANNOUNCING


def test_call_ending_with_the_gate_open_records_a_refusal() -> None:
    gate = ConsentGate("ask", TEXTS)
    step = gate.ended(AT)
    assert summary(step) == [("recording", "refused", "default"), ("transcription", "refused", "default")]
    assert gate.ended(AT) == GateStep()


def test_programming_errors_say_how_to_fix_the_call() -> None:
    with pytest.raises(RuntimeError, match="max_asks"):
        ConsentGate("ask", TEXTS, max_asks=0)
    with pytest.raises(RuntimeError, match="aware"):
        asking().heard("ja", dt.datetime(2025, 3, 4, 9, 0))  # noqa: DTZ001


def test_texts_without_a_question_hash_the_announcement_only() -> None:
    texts = ConsentTexts(version="v", announcement="A")
    assert texts.heard("ask") == "A"
    assert texts.sha256("announce") == hashlib.sha256(b"A").hexdigest()
