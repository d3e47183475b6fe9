"""Speculative transcription: the turn is transcribed at a pause, while the hangover still runs."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from typing_extensions import override

from tests.support.audio import silence, tone
from tests.support.fakes_voice import FakeCall, FakeSpeechToText, feed_turn_detector, make_call, run_frames
from voicedesk.dialogue.engine import Reply
from voicedesk.voice.frames import PCM
from voicedesk.voice.ports import Transcription
from voicedesk.voice.turns import SpeechAbandoned, SpeechPaused, SpeechStarted, TurnDetector, TurnEnded

HELLO, MORE = 700, 750
PHRASES = {HELLO: "Tell me about prices.", MORE: "Actually, I want to book."}
READY_MS = 1300  # announcement (650 ms) + greeting (550 ms) played in announce mode


# --- TurnDetector: SpeechPaused -----------------------------------------------------------
class _LoudVad:
    """Speech while the frame is loud (no VAD tail)."""

    def speech_probability(self, frame: PCM) -> float:
        return 0.9 if frame.size and float(np.abs(frame).max()) > 100 else 0.0

    def reset(self) -> None:
        return None



def _detector(early_ms: int | None = 200, **kwargs: Any) -> TurnDetector:
    return TurnDetector(_LoudVad(), hangover_ms=600, early_ms=early_ms, **kwargs)


def test_each_pause_of_early_ms_yields_one_speech_paused_with_the_turn_so_far() -> None:
    events = feed_turn_detector(_detector(), silence(400), tone(300, 500), silence(300), tone(300, 400), silence(2000))
    assert [type(e) for e in events] == [SpeechStarted, SpeechPaused, SpeechPaused, TurnEnded]
    first, second, ended = events[1], events[2], events[3]
    assert isinstance(first, SpeechPaused) and isinstance(second, SpeechPaused) and isinstance(ended, TurnEnded)
    assert (first.start_ms, first.last_voiced_ms) == (400, 900)
    assert first.pcm.size == (200 + 500 + 200) * 8  # preroll + speech + the pause so far
    assert (second.start_ms, second.last_voiced_ms) == (400, 1600)
    assert second.pcm.size == (200 + 500 + 300 + 400 + 200) * 8
    assert (ended.start_ms, ended.last_voiced_ms) == (second.start_ms, second.last_voiced_ms)
    assert np.array_equal(ended.pcm[: second.pcm.size], second.pcm)


def test_pauses_shorter_than_early_ms_yield_no_speech_paused() -> None:
    events = feed_turn_detector(_detector(), silence(400), tone(300, 500), silence(180), tone(300, 400), silence(2000))
    paused = [e for e in events if isinstance(e, SpeechPaused)]
    assert len(paused) == 1 and paused[0].last_voiced_ms == 1480  # only the pause that ends the turn


@pytest.mark.parametrize("early_ms", [None, 0])
def test_no_speech_paused_when_disabled(early_ms: int | None) -> None:
    events = feed_turn_detector(_detector(early_ms), silence(400), tone(300, 500), silence(300), tone(300, 400),
                                silence(2000))
    assert [type(e) for e in events] == [SpeechStarted, TurnEnded]


def test_no_speech_paused_for_a_burst_under_min_speech_ms() -> None:
    events = feed_turn_detector(_detector(min_speech_ms=120), silence(400), tone(300, 80), silence(1000))
    assert [type(e) for e in events] == [SpeechStarted, SpeechAbandoned]


def test_no_speech_paused_when_the_hangover_is_not_longer_than_early_ms() -> None:
    detector = _detector(early_ms=400)
    detector.hangover_ms = 400  # as after a yes/no question with a 400 ms hangover
    events = feed_turn_detector(detector, silence(400), tone(300, 500), silence(1000))
    assert [type(e) for e in events] == [SpeechStarted, TurnEnded]


def test_reset_forgets_the_pause() -> None:
    detector = _detector()
    events = feed_turn_detector(detector, silence(400), tone(300, 500), silence(200))
    assert isinstance(events[-1], SpeechPaused)
    detector.reset()
    assert not detector.in_speech
    events = feed_turn_detector(detector, silence(400), tone(300, 500), silence(2000))
    assert [type(e) for e in events] == [SpeechStarted, SpeechPaused, TurnEnded]


# --- CallSession ------------------------------------------------------------------------
class _StreamTimeStt(FakeSpeechToText):
    """Takes ``seconds`` of stream time, overlapping the audio that goes on meanwhile (as a
    worker thread does), instead of the fake clock's sequential compute time."""

    def __init__(self, call: FakeCall, seconds: float) -> None:
        super().__init__(PHRASES, call.clock)
        self.seconds = seconds
        self.started: list[tuple[float, int]] = []  # (stream s, audio ms) per call

    @override
    async def transcribe(self, pcm: PCM, sample_rate: int, language: str) -> Transcription:
        start = self.clock.stream_s
        self.started.append((start, pcm.size * 1000 // sample_rate))
        while self.clock.stream_s < start + self.seconds - 1e-9:  # noqa: ASYNC110 (run_frames sets it)
            await asyncio.sleep(0)
        return await super().transcribe(pcm, sample_rate, language)


def _call(speculative_stt_ms: int, stt_s: float | None = None, **kwargs: Any) -> FakeCall:
    call = make_call(phrases=PHRASES, consent_mode="announce", hangover_ms=600,
                     speculative_stt_ms=speculative_stt_ms, replies={PHRASES[HELLO]: Reply("Prices are fair.")},
                     **kwargs)
    if stt_s is not None:
        call.stt = _StreamTimeStt(call, stt_s)
        call.session.stt = call.stt
    return call


@pytest.mark.req("R-3.2")
async def test_the_speculative_transcription_is_used_and_the_reply_comes_earlier() -> None:
    figures = {}
    for spec_ms in (200, 0):
        call = _call(spec_ms, stt_s=0.3)
        call.caller.start().silence(READY_MS + 700).say(HELLO).silence(3000)
        await run_frames(call, spins=500)
        assert call.stt.calls == 1  # with speculation: the snapshot's transcription serves the turn
        assert call.conversation.utterances == [PHRASES[HELLO]]
        [timings] = call.metrics.timings
        figures[spec_ms] = (timings, call.metrics.speculations)

    (on, on_outcomes), (off, off_outcomes) = figures[200], figures[0]
    assert on_outcomes == ["used"] and off_outcomes == []
    assert on.endpoint == pytest.approx(off.endpoint) == pytest.approx(0.6, abs=0.03)
    assert off.stt >= 0.28 and on.stt <= 0.05  # STT waited for after the endpoint
    assert off.voice_to_voice - on.voice_to_voice >= 0.2  # ≈ the STT time, hidden behind the hangover


async def test_a_caller_who_goes_on_after_a_pause_gets_the_whole_turn_transcribed() -> None:
    call = _call(200)
    # "prices" (600 ms), a 300 ms pause, then a longer "book" (900 ms): the whole turn is "book"
    call.caller.start().silence(READY_MS + 700).say(HELLO, 600).silence(300).say(MORE, 900).silence(3000)
    await run_frames(call)

    assert call.conversation.utterances == [PHRASES[MORE]]  # not the snapshot's "prices"
    assert call.metrics.speculations == ["stale", "used"]
    assert call.stt.calls == 2
    [turn] = [t for t in call.session.transcript if t.speaker == "caller"]
    assert turn.text == PHRASES[MORE]


async def test_a_pause_while_the_stale_transcription_still_runs_is_speculated_after_it() -> None:
    call = _call(200, stt_s=1.2)
    start = READY_MS + 700
    call.caller.start().silence(start).say(HELLO, 300).silence(300).say(MORE, 700).silence(4000)
    await run_frames(call, spins=500)

    assert isinstance(call.stt, _StreamTimeStt)
    # the first pause at start+300: speculated at +500 and stale at +600; the second pause
    # reaches 200 ms at +1500 while that one runs until +1700; the end of turn is at +1900
    (first_at, first_ms), (second_at, second_ms) = call.stt.started
    assert first_at == pytest.approx((start + 500) / 1000, abs=0.03)
    assert second_at == pytest.approx((start + 1700) / 1000, abs=0.03)
    assert second_ms > first_ms
    assert call.metrics.speculations == ["stale", "used"]
    assert call.conversation.utterances == [PHRASES[MORE]]


@pytest.mark.req("R-4.1")
async def test_a_failed_speculation_falls_back_to_transcribing_the_turn() -> None:
    call = _call(200)
    call.stt.failures.append(RuntimeError("decoder crashed"))
    call.caller.start().silence(READY_MS + 700).say(HELLO).silence(3000)
    await run_frames(call)

    assert call.stt.calls == 2
    assert call.metrics.speculations == ["failed"]
    assert call.metrics.errors == [("stt", "internal")]
    assert call.conversation.utterances == [PHRASES[HELLO]]


async def test_barge_in_drops_the_speculation() -> None:
    call = _call(200)
    call.conversation.replies = {PHRASES[HELLO]: Reply("First sentence is here. Second sentence is longer. Third.")}
    # the reply plays from ~3300 ms; the caller pauses inside the barge-in and goes on
    call.caller.start().silence(READY_MS + 700).say(HELLO).silence(700 + 200).say(MORE, 200).silence(250)
    call.caller.say(MORE, 600).silence(2000)
    await run_frames(call)

    assert call.conversation.heard_texts  # the reply was interrupted
    assert call.conversation.utterances == [PHRASES[HELLO], PHRASES[MORE]]
    assert call.metrics.speculations.count("used") == 2


@pytest.mark.parametrize("turn_ended", [False, True])
async def test_close_during_a_speculation_leaves_no_task_behind(turn_ended: bool) -> None:
    call = _call(200)
    call.stt.hold = asyncio.Event()  # never set: the transcription hangs
    call.caller.start().silence(READY_MS + 700).say(HELLO).silence(1000 if turn_ended else 300)
    await run_frames(call, spins=50)
    session = call.session
    assert call.stt.calls == 1
    tasks = set(session._speculating)
    assert len(tasks) == 1

    await session.close()
    assert all(t.done() for t in tasks) and not session._speculating
    assert call.conversation.utterances == []
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
