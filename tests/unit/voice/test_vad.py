"""SileroVad on generated and synthesised 8 kHz audio, alone and driving the TurnDetector."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.audio import frames, noise, silence, synth_pcm8k, tone
from voicedesk.voice.frames import AudioIn
from voicedesk.voice.turns import SpeechStarted, TurnDetector, TurnEnded
from voicedesk.voice.vad import SileroVad, SileroVadPool


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


# --- SileroVadPool ------------------------------------------------------------------
def test_pool_lends_loaded_models_and_takes_them_back() -> None:
    import gc

    pool = SileroVadPool(2, low_water=0)
    pool.fill()
    assert (pool.idle, pool.loaded) == (2, 2)
    vad = pool()
    assert vad.model is not None and pool.idle == 1
    speech = synth_pcm8k("Can I speak to someone please", "en")
    probs = [vad.speech_probability(f) for f in frames(speech)]
    model = vad.model
    del vad
    gc.collect()
    assert pool.idle == 2 and pool.loaded == 2
    again = pool()  # the same model, reset: it scores like a fresh one
    assert again.model is model or pool.idle == 1
    assert [again.speech_probability(f) for f in frames(speech)] == probs
    pool.close()


def test_an_empty_pool_loads_off_the_caller_thread_and_keeps_the_audio() -> None:
    import time

    pool = SileroVadPool(0, low_water=1, grow_by=1)
    vad = pool()  # returns at once; the model loads on the pool's thread
    assert pool.misses == 1
    speech = np.concatenate([silence(300), synth_pcm8k("Can I speak to someone please", "en")])
    head = [vad.speech_probability(f) for f in frames(speech[:800])]  # maybe before the model is there
    deadline = time.monotonic() + 30
    while vad.model is None and time.monotonic() < deadline:
        vad.speech_probability(np.zeros(0, dtype=np.int16))
        time.sleep(0.01)
    probs = head + [vad.speech_probability(f) for f in frames(speech[800:])]
    reference = SileroVad()
    assert probs[-1] == [reference.speech_probability(f) for f in frames(speech)][-1]
    assert max(probs) > 0.9
    deadline = time.monotonic() + 30
    while pool.idle < 1 and time.monotonic() < deadline:  # and it refills to the low-water mark
        time.sleep(0.01)
    assert pool.idle == 1
    pool.close()
