"""End-of-turn detection: VAD probability per frame → caller turns.

A turn starts at the first voiced frame and ends after ``hangover_ms`` of unvoiced audio
(speech.md: 500–700 ms for free speech; shorter after a yes/no question). Bursts with less
than ``min_speech_ms`` of voiced audio are dropped as noise. Time is the stream's own
(``AudioIn.timestamp_ms``), so the detector needs no clock.

The hangover counts from the last frame that is both voiced *and* loud (RMS at or above
``loud_dbfs``): Silero keeps P(speech) above 0.5 for another 20–120 ms after the speech
energy has ended (bench/FINDINGS.md, finding 1), and that tail should not delay the end of
the turn. A voiced but quiet stretch longer than ``max_quiet_tail_ms`` is no such tail but
quiet speech (a soft talker, a line with low gain): it counts as voiced, as before.

With ``early_ms`` set, a pause within a turn that reaches ``early_ms`` of silence (once per
pause, and only after ``min_speech_ms`` of voiced audio) yields ``SpeechPaused`` with the
turn's audio so far: the session starts transcribing it while the hangover still runs
(speculative transcription). If the caller goes on speaking, ``last_voiced_ms`` moves on and
that snapshot no longer matches the turn that finally ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from voicedesk.voice.frames import PCM, AudioIn
from voicedesk.voice.ports import VoiceActivityDetector


@dataclass(frozen=True)
class SpeechStarted:
    """The first voiced frame of a possible turn."""

    at_ms: int


@dataclass(frozen=True)
class SpeechAbandoned:
    """A voiced burst too short to be a turn (a click, a cough) ended."""

    at_ms: int


@dataclass(frozen=True)
class TurnEnded:
    """A finished caller turn, with a little audio before its first voiced frame."""

    pcm: PCM
    start_ms: int
    last_voiced_ms: int  # stream time at the end of the last voiced frame
    end_ms: int  # stream time at which the end of turn was decided
    voiced_ms: int


@dataclass(frozen=True)
class SpeechPaused:
    """The turn so far, once its current pause has lasted ``early_ms`` (the turn may still go on)."""

    pcm: PCM
    start_ms: int
    last_voiced_ms: int


TurnEvent = SpeechStarted | SpeechPaused | SpeechAbandoned | TurnEnded


class TurnDetector:
    """Feeds frames to a VAD and cuts the caller's audio into turns."""

    def __init__(
        self,
        vad: VoiceActivityDetector,
        *,
        sample_rate: int = 8000,
        threshold: float = 0.5,
        hangover_ms: int = 700,
        min_speech_ms: int = 120,
        preroll_ms: int = 200,
        max_turn_ms: int = 30_000,
        loud_dbfs: float | None = -45.0,
        max_quiet_tail_ms: int = 160,
        early_ms: int | None = None,
    ) -> None:
        self.vad = vad
        self.sample_rate = sample_rate
        self.threshold = threshold
        self.hangover_ms = hangover_ms
        self.min_speech_ms = min_speech_ms
        self.preroll_ms = preroll_ms
        self.max_turn_ms = max_turn_ms
        self.loud_dbfs = loud_dbfs
        self.max_quiet_tail_ms = max_quiet_tail_ms
        self.early_ms = early_ms  # None or 0: no SpeechPaused
        self._preroll: deque[PCM] = deque()
        self._preroll_samples = 0
        self._buffer: list[PCM] = []
        self.in_speech = False
        self.voiced_ms = 0
        self.start_ms = 0
        self._last_voiced_end = 0
        self._silence_ms = 0
        self._quiet_ms = 0  # voiced but quiet audio in a row (Silero's tail, or soft speech)
        self._paused = False  # SpeechPaused already sent for the current pause

    @property
    def last_voiced_ms(self) -> int:
        return self._last_voiced_end

    def feed(self, frame: AudioIn) -> TurnEvent | None:
        return self.feed_scored(frame, self.vad.speech_probability(frame.pcm))

    async def feed_async(self, frame: AudioIn) -> TurnEvent | None:
        """``feed``, with the VAD's model run off the event loop when the VAD can do that."""
        score = getattr(self.vad, "speech_probability_async", None)
        probability = await score(frame.pcm) if score is not None else self.vad.speech_probability(frame.pcm)
        return self.feed_scored(frame, probability)

    def feed_scored(self, frame: AudioIn, probability: float) -> TurnEvent | None:
        """Advance by one frame whose VAD probability is known."""
        pcm = frame.pcm
        dur = pcm.size * 1000 // self.sample_rate
        voiced = probability >= self.threshold
        if not self.in_speech:
            if not voiced:
                self._keep_preroll(pcm)
                return None
            self.in_speech = True
            self.start_ms = frame.timestamp_ms
            self._buffer = [*self._preroll, pcm]
            self._preroll.clear()
            self._preroll_samples = 0
            self.voiced_ms = dur
            self._silence_ms = 0
            self._quiet_ms = 0
            self._paused = False
            self._last_voiced_end = frame.timestamp_ms + dur
            return SpeechStarted(frame.timestamp_ms)
        self._buffer.append(pcm)
        if not voiced:
            self._quiet_ms = 0
            self._silence_ms += dur
        else:
            self.voiced_ms += dur
            if self._is_loud(pcm):
                self._quiet_ms = 0
            else:
                self._quiet_ms += dur
            # a quiet run up to the limit may be Silero's tail: it counts toward the hangover
            if 0 < self._quiet_ms < min(self.max_quiet_tail_ms, self.hangover_ms - dur):
                self._silence_ms += dur
            else:
                self._silence_ms = 0
                self._paused = False
                self._last_voiced_end = frame.timestamp_ms + dur
        now = frame.timestamp_ms + dur
        if self._silence_ms >= self.hangover_ms or now - self.start_ms >= self.max_turn_ms:
            return self._finish(now)
        if (
            self.early_ms
            and not self._paused
            and self._silence_ms >= self.early_ms
            and self.voiced_ms >= self.min_speech_ms
        ):
            self._paused = True
            return SpeechPaused(pcm=np.concatenate(self._buffer), start_ms=self.start_ms,
                                last_voiced_ms=self._last_voiced_end)
        return None

    def reset(self) -> None:
        """Forget any turn in progress (e.g. after the assistant's own prompt was flushed)."""
        self.in_speech = False
        self._buffer = []
        self._preroll.clear()
        self._preroll_samples = 0
        self.voiced_ms = 0
        self._silence_ms = 0
        self._quiet_ms = 0
        self._paused = False
        self.vad.reset()

    def _finish(self, now: int) -> TurnEvent:
        voiced, buffer = self.voiced_ms, self._buffer
        self.in_speech = False
        self._buffer = []
        self.voiced_ms = 0
        self._silence_ms = 0
        self._quiet_ms = 0
        self._paused = False
        if voiced < self.min_speech_ms:
            return SpeechAbandoned(now)
        pcm = np.concatenate(buffer) if buffer else np.zeros(0, dtype=np.int16)
        return TurnEnded(pcm=pcm, start_ms=self.start_ms, last_voiced_ms=self._last_voiced_end,
                         end_ms=now, voiced_ms=voiced)

    def _is_loud(self, pcm: PCM) -> bool:
        if self.loud_dbfs is None or pcm.size == 0:
            return True
        x = pcm.astype(np.float32)
        return float(np.dot(x, x)) >= pcm.size * 32768.0**2 * 10 ** (self.loud_dbfs / 10)

    def _keep_preroll(self, pcm: PCM) -> None:
        self._preroll.append(pcm)
        self._preroll_samples += pcm.size
        limit = self.preroll_ms * self.sample_rate // 1000
        while self._preroll and self._preroll_samples - self._preroll[0].size >= limit:
            self._preroll_samples -= self._preroll.popleft().size
