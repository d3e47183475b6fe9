"""CallSession turn-taking: barge-in, backchannels, yes/no answers, silence, errors, latency."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support.fakes_voice import FakeCall, make_call, run_frames
from voicedesk.dialogue.engine import Reply
from voicedesk.domain.errors import ErrorCategory, ProviderError
from voicedesk.voice.frames import ClearOut, MarkOut

HELLO, MORE, MHM, YES = 700, 750, 800, 500
PHRASES = {HELLO: "Tell me about prices.", MORE: "Actually, I want to book.", MHM: "mhm", YES: "Yes."}
LONG = Reply("First sentence is here. Second sentence is a bit longer than that. Third one.")
READY_MS = 1300  # announcement (650 ms) + greeting (550 ms) played in announce mode


def conversation_call(**kwargs: Any) -> FakeCall:
    kwargs.setdefault("replies", {"Tell me about prices.": LONG})
    return make_call(phrases=PHRASES, consent_mode="announce", **kwargs)


def reply_turn(call: FakeCall, text: str) -> list[object]:
    return [t for t in call.session.transcript if t.speaker == "assistant" and t.text == text]


@pytest.mark.req("R-3.2")
async def test_barge_in_clears_playback_and_keeps_only_what_was_heard() -> None:
    call = conversation_call()
    # the reply starts at ~3300 ms: sentence 1 until ~3875, sentence 2 (1050 ms) until ~4925
    call.caller.start().silence(READY_MS + 700).say(HELLO).silence(700 + 1000).say(MORE, 800).silence(2000)
    sent = await run_frames(call)

    assert sum(isinstance(f, ClearOut) for f in sent) == 1
    heard = call.conversation.heard_texts
    assert len(heard) == 1
    assert heard[0].startswith("First sentence is here. Second")
    assert heard[0] == "First sentence is here. Second sentence is a bit"  # 5 of 8 words: 740 of 1050 ms
    [turn] = [t for t in call.session.transcript if t.text == LONG.text]
    assert turn.interrupted and turn.heard_text == heard[0]
    assert call.conversation.utterances == ["Tell me about prices.", "Actually, I want to book."]


async def test_barge_in_before_any_mark_echo_keeps_a_proportional_cut() -> None:
    call = conversation_call()
    call.caller.start().silence(READY_MS + 700).say(HELLO).silence(700 + 100).say(MORE, 800).silence(2000)
    await run_frames(call)

    heard = call.conversation.heard_texts[0]
    assert "First sentence is here.".startswith(heard)
    assert heard != "First sentence is here."


async def test_backchannel_during_playback_neither_interrupts_nor_becomes_a_turn() -> None:
    call = conversation_call()
    call.caller.start().silence(READY_MS + 700).say(HELLO).silence(700 + 800).say(MHM, 200).silence(3000)
    sent = await run_frames(call)

    assert not any(isinstance(f, ClearOut) for f in sent)
    assert call.stt.calls == 2  # the "mhm" was transcribed …
    assert call.conversation.utterances == ["Tell me about prices."]  # … and dropped
    [turn] = [t for t in call.session.transcript if t.text == LONG.text]
    assert not turn.interrupted and turn.heard_text == LONG.text
    assert call.conversation.heard_texts == []


async def test_yes_no_answer_running_past_the_end_of_the_question_is_taken() -> None:
    question = Reply("Shall I book Tuesday at ten?", expects="yes_no")  # 28 chars: 700 ms
    call = conversation_call(replies={"Tell me about prices.": question, "Yes.": Reply("Booked.")})
    # question plays ~3300..4000; "yes" 3900..4150 overlaps its end but is too short to barge in
    call.caller.start().silence(READY_MS + 700).say(HELLO).silence(700 + 600).say(YES, 260).silence(2000)
    await run_frames(call)

    assert call.conversation.utterances == ["Tell me about prices.", "Yes."]
    assert reply_turn(call, "Booked.")


async def test_yes_no_answer_uses_the_short_hangover() -> None:
    question = Reply("Shall I book it?", expects="yes_no")
    call = conversation_call(replies={"Tell me about prices.": question, "Yes.": Reply("Booked.")},
                             yes_no_hangover_ms=300)
    call.caller.start().silence(READY_MS + 700).say(HELLO).silence(700 + 1000).say(YES, 300).silence(320)
    await run_frames(call)
    assert call.conversation.utterances == ["Tell me about prices.", "Yes."]


async def test_silence_after_a_reply_asks_the_conversation_with_an_empty_utterance() -> None:
    call = conversation_call(silence_timeout_ms=4000)
    call.caller.start().silence(READY_MS + 4800)
    await run_frames(call)
    assert call.conversation.utterances == [""]
    assert reply_turn(call, "Are you still there?")


@pytest.mark.req("R-4.1")
async def test_a_failing_stt_is_retried_within_the_turn() -> None:
    call = conversation_call()
    call.stt.failures.append(RuntimeError("decoder crashed"))
    call.caller.start().silence(READY_MS + 700).say(HELLO).silence(3000)
    await run_frames(call)

    assert call.conversation.utterances == ["Tell me about prices."]
    assert [(e.stage, e.category) for e in call.session.errors] == [("stt", "internal")]
    assert call.metrics.errors == [("stt", "internal")]


@pytest.mark.req("R-4.1")
async def test_stt_failing_for_a_whole_turn_apologises_and_the_call_goes_on() -> None:
    call = conversation_call()
    call.stt.failures.extend([RuntimeError("x"), RuntimeError("x")])
    call.caller.start().silence(READY_MS + 700).say(HELLO).silence(3500).say(HELLO).silence(3000)
    await run_frames(call)

    assert reply_turn(call, "Sorry, I didn't catch that. Could you say it again, please?")
    assert call.conversation.utterances == ["Tell me about prices."]
    assert call.session.phase == "conversation"
    assert call.control.transfers == []


@pytest.mark.req("R-4.1")
async def test_a_permanent_dialogue_failure_apologises_and_hands_over_to_a_human() -> None:
    call = conversation_call()
    call.conversation.failures.append(
        ProviderError("llm key revoked", category=ErrorCategory.AUTH, provider="fake-llm"))
    call.caller.start().silence(READY_MS + 700).say(HELLO).silence(5000)
    await run_frames(call)

    assert reply_turn(call, "Sorry, I'm having a technical problem. I'll connect you with a member of staff.")
    assert len(call.control.transfers) == 1
    assert call.session.phase == "transferring"
    assert [(e.stage, e.category, e.permanent) for e in call.session.errors] == [("dialogue", "auth", True)]


async def test_tts_failure_is_retried_and_a_broken_tts_hands_over_to_a_human() -> None:
    call = conversation_call()
    call.tts.failures.append(ProviderError("busy", category=ErrorCategory.TIMEOUT, provider="fake-tts"))
    call.caller.start().silence(READY_MS + 700).say(HELLO).silence(4000)
    await run_frames(call)
    assert reply_turn(call, LONG.text)[0].heard_text == LONG.text  # type: ignore[attr-defined]

    call = conversation_call()
    call.tts.failures.extend(
        [ProviderError("gone", category=ErrorCategory.UNAVAILABLE, provider="fake-tts")] * 10)
    call.caller.start().silence(READY_MS + 700).say(HELLO).silence(4000)
    await run_frames(call)
    assert call.session.phase == "transferring"
    assert len(call.control.transfers) == 1


@pytest.mark.req("R-3.2")
async def test_turn_timings_cover_endpoint_stt_dialogue_and_first_audio() -> None:
    call = conversation_call(stt_compute_s=0.2, dialogue_compute_s=0.1, tts_first_audio_s=0.05,
                             hangover_ms=600)
    call.caller.start().silence(READY_MS + 700).say(HELLO).silence(3000)
    await run_frames(call)

    [t] = call.metrics.timings
    assert t.endpoint == pytest.approx(0.6)
    assert t.stt == pytest.approx(0.2)
    assert t.dialogue == pytest.approx(0.1)
    assert t.tts_first_audio == pytest.approx(0.05)
    assert t.voice_to_voice == pytest.approx(0.95)


async def test_marks_follow_each_sentence_in_order() -> None:
    call = conversation_call()
    call.caller.start().silence(READY_MS + 700).say(HELLO).silence(4000)
    sent = await run_frames(call)
    marks = [f.name for f in sent if isinstance(f, MarkOut)]
    assert len(marks) == 2 + 3 and len(set(marks)) == 5
    assert call.carrier.flushed == []


async def test_barge_in_cancels_synthesis_still_in_progress() -> None:
    call = conversation_call()
    call.tts.hold_after = 3  # announcement, greeting and the reply's first sentence synthesise at once
    call.caller.start().silence(READY_MS + 700).say(HELLO).silence(700 + 100).say(MORE, 800).silence(1500)
    sent = await run_frames(call, spins=200)

    assert call.tts.sentences[2:4] == ["First sentence is here.", "Second sentence is a bit longer than that."]
    assert any(isinstance(f, ClearOut) for f in sent)
    [turn] = [t for t in call.session.transcript if t.text == LONG.text]
    assert turn.interrupted and "Second" not in (turn.heard_text or "")
    call.tts.release.set()
    await call.session.wait_idle()
    assert "Third one." not in call.tts.sentences  # the cancelled reply never went on
    assert call.conversation.utterances == ["Tell me about prices.", "Actually, I want to book."]


async def test_a_stalled_call_does_not_hold_up_another_call() -> None:
    stalled, other = conversation_call(), conversation_call()
    stalled.stt.hold = asyncio.Event()  # never set: this call's STT hangs
    stalled.caller.start().silence(READY_MS + 700).say(HELLO).silence(1500)
    await run_frames(stalled, spins=50)
    assert stalled.stt.calls == 1 and stalled.conversation.utterances == []

    other.caller.start().silence(READY_MS + 700).say(HELLO).silence(3000)
    await run_frames(other)
    assert other.conversation.utterances == ["Tell me about prices."]
    assert reply_turn(other, LONG.text)
    await stalled.session.close()
    assert stalled.session.phase == "closed"
