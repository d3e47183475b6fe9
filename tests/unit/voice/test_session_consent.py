"""CallSession and the consent gate (R-4.2, R-3.2): what is recorded and persisted, and when."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fakes_voice import FakeCall, make_call, run_frames
from voicedesk.voice.frames import ClearOut

pytestmark = pytest.mark.req("R-4.2")

YES, NO, HELLO, STOP, HUH = 500, 600, 700, 900, 1100
PHRASES = {YES: "Yes.", NO: "No, thanks.", HELLO: "I need an appointment.", STOP: "Please stop recording.",
           HUH: "What was that?"}
GATE_MS = 1500  # announcement (650 ms) + question (675 ms) and a little slack


def ask_call(**config: Any) -> FakeCall:
    return make_call(phrases=PHRASES, consent_mode="ask", **config)


def decisions(call: FakeCall) -> list[tuple[str, str, str]]:
    return [(d.purpose, d.decision, d.method) for d in call.consents.decisions]


async def test_ask_mode_key_1_grants_then_records_and_persists_turns() -> None:
    call = ask_call()
    call.caller.start().silence(GATE_MS).key("1").silence(1500).say(HELLO).silence(2500).stop()
    await run_frames(call)

    assert decisions(call) == [("recording", "granted", "key"), ("transcription", "granted", "key")]
    d = call.consents.decisions[0]
    assert d.text_version == "test-v1" and len(d.text_sha256) == 64
    assert call.recording.start is not None
    assert call.recording.start.call_sid == "CA0001"
    assert call.recording.start.offset_ms >= GATE_MS
    assert call.recording.closed and not call.recording.discarded
    assert call.recording.samples("caller") > 0 and call.recording.samples("assistant") > 0
    persisted = [(t.speaker, t.text) for t in call.turns.turns]
    assert persisted == [
        ("assistant", "Hello, how can I help?"),
        ("caller", "I need an appointment."),
        ("assistant", "Could you say that again?"),
    ]
    assert call.conversation.utterances == ["I need an appointment."]


async def test_ask_mode_yes_by_voice_after_the_question() -> None:
    call = ask_call()
    call.caller.start().silence(GATE_MS).say(YES, 400).silence(1500).stop()
    await run_frames(call)

    assert decisions(call) == [("recording", "granted", "voice"), ("transcription", "granted", "voice")]
    assert call.recording.start is not None
    assert call.conversation.greeted == 1
    assert call.conversation.utterances == []  # the consent answer never reaches the dialogue
    assert [t.speaker for t in call.session.transcript][:3] == ["assistant", "assistant", "caller"]


async def test_refusal_keeps_the_call_going_but_stores_nothing() -> None:
    call = ask_call()
    call.caller.start().silence(GATE_MS).say(NO, 500).silence(1500).say(HELLO).silence(2500).stop()
    await run_frames(call)

    assert decisions(call) == [("recording", "refused", "voice"), ("transcription", "refused", "voice")]
    assert call.recording.start is None and call.recording.chunks == []
    assert call.turns.turns == []
    assert call.conversation.utterances == ["I need an appointment."]  # still served
    assert any(t.text == "I need an appointment." for t in call.session.transcript)  # in memory only


async def test_unclear_answer_reasks_once_and_silence_then_counts_as_no() -> None:
    call = ask_call(consent_answer_timeout_ms=3000)
    call.caller.start().silence(GATE_MS).say(HUH, 500).silence(10_000).stop()
    await run_frames(call)

    questions = [t for t in call.session.transcript if t.text == "Do you agree? Say yes or no."]
    assert len(questions) == 2
    assert decisions(call) == [("recording", "refused", "silence"), ("transcription", "refused", "silence")]
    assert call.conversation.greeted == 1
    assert call.recording.start is None


async def test_withdrawal_mid_call_discards_the_recording_and_the_transcript() -> None:
    call = ask_call()
    call.caller.start().silence(GATE_MS).key("1").silence(1500).say(HELLO).silence(2500)
    call.caller.say(STOP, 700).silence(3000).say(HELLO).silence(2500).stop()
    await run_frames(call)

    withdrawn = [("recording", "withdrawn", "voice"), ("transcription", "withdrawn", "voice")]
    assert decisions(call)[2:] == withdrawn
    assert call.recording.discarded and call.recording.chunks == []
    assert call.turns.discarded and call.turns.turns == []
    assert any(t.text == "All right, this call will not be recorded." for t in call.session.transcript)
    assert "Please stop recording." not in call.conversation.utterances
    assert call.conversation.utterances == ["I need an appointment.", "I need an appointment."]


async def test_key_2_withdraws_at_any_time() -> None:
    call = ask_call()
    call.caller.start().silence(GATE_MS).key("1").silence(2000).say(HELLO).silence(800).key("2").silence(3000)
    await run_frames(call)

    assert [d.decision for d in call.consents.decisions] == ["granted", "granted", "withdrawn", "withdrawn"]
    assert call.consents.decisions[-1].method == "key"
    assert call.recording.discarded
    assert not call.session.recorder.recording


async def test_key_2_during_the_question_refuses_and_skips_the_rest_of_it() -> None:
    call = ask_call()
    call.caller.start().silence(900).key("2").silence(2000).stop()
    sent = await run_frames(call)

    assert decisions(call) == [("recording", "refused", "key"), ("transcription", "refused", "key")]
    assert any(isinstance(f, ClearOut) for f in sent)
    assert call.conversation.greeted == 1


async def test_announce_mode_starts_recording_once_the_announcement_played() -> None:
    call = make_call(phrases=PHRASES, consent_mode="announce")
    call.caller.start().silence(300)
    await run_frames(call)
    before = call.recording.start
    assert before is None  # announcement still playing
    call.caller.frames.clear()
    call.caller.silence(1500).say(HELLO).silence(2000).stop()
    await run_frames(call)

    assert decisions(call) == [("recording", "granted", "default"), ("transcription", "granted", "default")]
    assert call.recording.start is not None and call.recording.start.offset_ms >= 650
    assert call.recording.closed
    assert [t.text for t in call.turns.turns][:2] == ["Hello, how can I help?", "I need an appointment."]


async def test_announce_mode_objection_during_the_announcement_refuses() -> None:
    call = make_call(phrases=PHRASES, consent_mode="announce", tts_ms_per_char=120)
    call.caller.start().say(STOP, 700).silence(5000).stop()
    await run_frames(call)

    assert decisions(call) == [("recording", "refused", "voice"), ("transcription", "refused", "voice")]
    assert call.recording.start is None
    assert call.turns.turns == []


async def test_call_ending_before_the_answer_records_a_refusal() -> None:
    call = ask_call()
    call.caller.start().silence(500).stop()
    await run_frames(call)
    assert decisions(call) == [("recording", "refused", "default"), ("transcription", "refused", "default")]
