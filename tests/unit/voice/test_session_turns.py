"""CallSession turn-taking: barge-in, backchannels, yes/no answers, silence, errors, latency."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from tests.support.audio import silence, tone
from tests.support.fakes_voice import FakeCall, feed_turn_detector, make_call, run_frames
from voicedesk.dialogue.engine import Reply
from voicedesk.domain.errors import ErrorCategory, ProviderError
from voicedesk.voice.frames import ClearOut, MarkOut
from voicedesk.voice.turns import SpeechStarted, TurnDetector, TurnEnded

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


# --- TurnDetector: the hangover counts from the last voiced *and* loud frame ------------
class _TailVad:
    """Speech while the frame RMS is above ``level``, and ``tail_ms`` beyond — like Silero,
    which keeps P(speech) > 0.5 for 20–120 ms after the speech energy ends."""

    def __init__(self, tail_ms: int, level: float = 30.0) -> None:
        self.tail_ms = tail_ms
        self.level = level
        self._left = 0

    def speech_probability(self, frame: np.ndarray) -> float:
        rms = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) if frame.size else 0.0
        if rms > self.level:
            self._left = self.tail_ms
            return 0.9
        if self._left > 0:
            self._left -= frame.size // 8
            return 0.8
        return 0.0

    def reset(self) -> None:
        self._left = 0



@pytest.mark.parametrize("tail_ms", [0, 20, 80, 120])
def test_turn_ends_one_hangover_after_the_audible_end_not_after_the_vad_tail(tail_ms: int) -> None:
    detector = TurnDetector(_TailVad(tail_ms), hangover_ms=600)
    events = feed_turn_detector(detector, silence(400), tone(300, 1200, dbfs=-20), silence(2000))
    started, ended = events
    assert isinstance(started, SpeechStarted) and started.at_ms == 400
    assert isinstance(ended, TurnEnded)
    assert ended.last_voiced_ms == 1600  # the tone's end, not the tail's
    assert ended.end_ms == 1600 + 600
    assert ended.voiced_ms == 1200 + tail_ms  # the tail still counts as voiced audio
    assert ended.pcm.size == (200 + 1200 + 600) * 8  # preroll + turn + hangover


def test_without_the_loudness_gate_the_vad_tail_delays_the_end() -> None:
    detector = TurnDetector(_TailVad(100), hangover_ms=600, loud_dbfs=None)
    ended = feed_turn_detector(detector, silence(400), tone(300, 1200, dbfs=-20), silence(2000))[-1]
    assert isinstance(ended, TurnEnded) and ended.end_ms == 1600 + 100 + 600


def test_the_short_hangover_also_counts_from_the_audible_end() -> None:
    detector = TurnDetector(_TailVad(120), hangover_ms=600)
    detector.hangover_ms = 400  # what the session sets after a yes/no question
    ended = feed_turn_detector(detector, silence(400), tone(300, 300, dbfs=-20), silence(1000))[-1]
    assert isinstance(ended, TurnEnded) and (ended.last_voiced_ms, ended.end_ms) == (700, 1100)


def test_quiet_speech_is_not_mistaken_for_the_vad_tail() -> None:
    # a soft talker (-50 dBFS, below the -45 dBFS gate) that the VAD hears as speech
    detector = TurnDetector(_TailVad(0, level=5.0), hangover_ms=600)
    events = feed_turn_detector(detector, silence(400), tone(300, 1500, dbfs=-50), silence(2000))
    assert [type(e) for e in events] == [SpeechStarted, TurnEnded]
    ended = events[-1]
    assert isinstance(ended, TurnEnded)
    assert ended.last_voiced_ms == 1900 and ended.end_ms == 1900 + 600  # as without the gate


def test_a_loud_word_after_a_quiet_stretch_keeps_the_turn_open() -> None:
    detector = TurnDetector(_TailVad(0, level=5.0), hangover_ms=600)
    events = feed_turn_detector(detector, silence(400), tone(300, 500, dbfs=-20), silence(300),
                                tone(300, 100, dbfs=-50), silence(100), tone(300, 400, dbfs=-20), silence(1500))
    assert [type(e) for e in events] == [SpeechStarted, TurnEnded]
    ended = events[-1]
    assert isinstance(ended, TurnEnded) and (ended.last_voiced_ms, ended.end_ms) == (1800, 2400)
