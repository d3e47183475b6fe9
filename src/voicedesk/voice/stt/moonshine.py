"""Local English speech-to-text with Moonshine base on onnxruntime (our own decoder loop).

The weights are Moonshine base (MIT) from the ``moonshine-cpp`` 0.1.4 package, converted
once into a writable directory by ``moonshine_convert.convert_moonshine_base`` (8-bit
MatMulNBits: about 12 ms per decoder step on one thread, 0.15–0.2 s per 2–5 s phone turn).
Nothing is downloaded, at conversion or at run time.

One ``LocalMoonshineSpeechToText`` per process, shared by all calls: it owns the two
onnxruntime sessions (1 intra-op thread each, speech.md: a second thread saves almost
nothing) and a small thread pool (``max_concurrency`` workers, default 1), so STT jobs run
off the event loop and one call's turn never blocks another call's audio. A queued job
whose caller gave up (task cancelled) is dropped before it runs.

Per turn: 8 kHz → 16 kHz, encoder once, then greedy decoding with the key/value cache of
the merged decoder. End-of-sentence is masked at the first step (otherwise short turns
sometimes come back empty), and the number of steps is bounded by the turn's duration
(8 tokens per second + 9) against loops.

Moonshine must only see VAD-gated speech: on silence or line noise it invents a word
("You"). As a cheap second line of defence, turns quieter than ``min_rms_dbfs`` return ""
without running the model; this does not replace the VAD.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from voicedesk.domain.errors import ConfigError, ErrorCategory, ProviderError
from voicedesk.voice.codecs import resample
from voicedesk.voice.ports import Transcription
from voicedesk.voice.stt import moonshine_convert

PCM = NDArray[np.int16]
MOONSHINE_RATE = 16_000
BOS, EOS = 1, 2
#: the tokenizer's real vocabulary; the decoder's 32 768 logits include unused padding ids.
VOCAB = 32_000
#: the encoder needs a little audio to produce any frame; shorter turns are zero-padded.
MIN_SAMPLES = MOONSHINE_RATE // 4

log = logging.getLogger(__name__)


def max_tokens(duration_s: float) -> int:
    """Loop guard: 8 tokens per second of audio + 9, capped at 200 (as for Whisper)."""
    return min(200, math.ceil(8 * duration_s) + 9)


def load_tokenizer(path: Path) -> list[bytes]:
    """``tokenizer.bin`` of moonshine-cpp: for each token id, one length byte and the token's bytes.

    Ids 3–258 are the raw bytes 0x00–0xFF (byte fallback); ``▁`` (U+2581) marks a word start.
    """
    data = Path(path).read_bytes()
    tokens: list[bytes] = []
    offset = 0
    while offset < len(data):
        length = data[offset]
        if length >= 0x80 or offset + 1 + length > len(data):
            raise ConfigError(f"unexpected tokenizer format in {path} at byte {offset}")
        tokens.append(data[offset + 1:offset + 1 + length])
        offset += 1 + length
    if len(tokens) != VOCAB or tokens[BOS] != b"<s>" or tokens[EOS] != b"</s>":
        raise ConfigError(f"unexpected tokenizer in {path}: {len(tokens)} tokens")
    return tokens


def detokenize(tokens: list[bytes], ids: list[int]) -> str:
    """Token ids → text (special tokens dropped, byte tokens joined before UTF-8 decoding)."""
    raw = b"".join(tokens[i] for i in ids if i > EOS)
    return raw.decode("utf-8", errors="replace").replace("\u2581", " ").strip()


@dataclass(frozen=True)
class _Sessions:
    encoder: Any
    decoder: Any
    past_names: tuple[str, ...]
    present_names: tuple[str, ...]
    kv_heads: int
    kv_dim: int
    tokens: list[bytes]


class LocalMoonshineSpeechToText:
    """``SpeechToText`` for English on a converted Moonshine base model (``moonshine_convert``).

    Args:
        model_dir: a directory written by ``convert_moonshine_base`` (``encoder.onnx``,
            ``decoder.onnx``, ``tokenizer.bin``).
        name: label for logs, metrics and errors.
        intra_op_threads: onnxruntime threads per job (1: speech.md, 2 barely helps).
        max_concurrency: parallel STT jobs (worker threads sharing the two sessions).
        min_rms_dbfs: turns quieter than this (RMS, dBFS) return "" without inference.
    """

    def __init__(
        self,
        model_dir: Path | str,
        *,
        name: str = "moonshine-base",
        intra_op_threads: int = 1,
        max_concurrency: int = 1,
        min_rms_dbfs: float = -45.0,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.name = name
        self.intra_op_threads = intra_op_threads
        self.max_concurrency = max_concurrency
        self.min_rms_dbfs = min_rms_dbfs
        self.last_token_count = 0
        self._sessions: _Sessions | None = None
        self._closed = False
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix=f"stt-{name}")

    @classmethod
    def english(cls, model_dir: Path | str, **kwargs: Any) -> LocalMoonshineSpeechToText:
        """Moonshine base from ``moonshine-cpp``, converted into ``model_dir`` if needed.

        ``model_dir`` must be writable on first use (e.g. ``<data_dir>/models/moonshine-base``).
        The conversion (a few seconds, about 1 GB of memory, once) happens here, so call this
        at start, not mid-call.
        """
        kwargs.setdefault("name", "moonshine-base")
        try:
            report = moonshine_convert.convert_moonshine_base(Path(model_dir))
        except ConfigError as exc:
            raise ProviderError(exc.msg, category=ErrorCategory.UNAVAILABLE, provider=kwargs["name"]) from exc
        if report.converted:
            log.info("converted Moonshine base into %s in %.1f s", report.target, report.seconds)
        return cls(report.target, **kwargs)

    # --- lifecycle --------------------------------------------------------------------
    async def warm_up(self) -> None:
        """Load both sessions and decode a short synthetic signal once."""
        loop = asyncio.get_running_loop()
        t = np.arange(MOONSHINE_RATE) / MOONSHINE_RATE
        signal = (3000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
        await loop.run_in_executor(self._executor, self._run, signal, MOONSHINE_RATE)

    def close(self) -> None:
        """Stop the worker threads after the jobs already queued (the sessions are freed with it)."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._sessions = None

    # --- SpeechToText -----------------------------------------------------------------
    async def transcribe(self, pcm: PCM, sample_rate: int, language: str) -> Transcription:
        """Transcribe one finished English turn (off the event loop)."""
        if language != "en":
            raise ProviderError(f"{self.name} is set up for ['en'], not {language!r}",
                                category=ErrorCategory.BAD_REQUEST, provider=self.name)
        if sample_rate <= 0:
            raise ProviderError(f"invalid sample rate {sample_rate}", category=ErrorCategory.BAD_REQUEST,
                                provider=self.name)
        if self._closed:
            raise ProviderError(f"{self.name} is closed", category=ErrorCategory.UNAVAILABLE, provider=self.name)
        audio_s = pcm.size / sample_rate
        if pcm.size == 0 or _rms_dbfs(pcm) < self.min_rms_dbfs:
            return Transcription(text="", language=language, audio_seconds=audio_s, compute_seconds=0.0)
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        text = await loop.run_in_executor(self._executor, self._run, pcm, sample_rate)
        return Transcription(text=text, language=language, audio_seconds=audio_s,
                             compute_seconds=time.perf_counter() - started)

    # --- worker thread ----------------------------------------------------------------
    def _load(self) -> _Sessions:
        with self._load_lock:
            if self._sessions is not None:
                return self._sessions
            try:
                import onnxruntime as ort  # optional dependency (comes with faster-whisper)
            except ImportError as exc:
                raise ProviderError("onnxruntime is not installed: pip install 'voicedesk[speech]'",
                                    category=ErrorCategory.UNAVAILABLE, provider=self.name) from exc
            if not moonshine_convert.is_converted(self.model_dir):
                raise ProviderError(f"no converted Moonshine model in {self.model_dir} "
                                    "(use LocalMoonshineSpeechToText.english(dir) to convert it)",
                                    category=ErrorCategory.UNAVAILABLE, provider=self.name)
            load_errors: tuple[type[Exception], ...] = (OSError, *_ort_errors())
            options = ort.SessionOptions()
            options.intra_op_num_threads = self.intra_op_threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            try:
                encoder = ort.InferenceSession(str(self.model_dir / moonshine_convert.ENCODER), options,
                                               providers=["CPUExecutionProvider"])
                decoder = ort.InferenceSession(str(self.model_dir / moonshine_convert.DECODER), options,
                                               providers=["CPUExecutionProvider"])
                tokens = load_tokenizer(self.model_dir / moonshine_convert.TOKENIZER)
            except ConfigError as exc:
                raise ProviderError(exc.msg, category=ErrorCategory.UNAVAILABLE, provider=self.name) from exc
            except load_errors as exc:
                raise ProviderError(f"cannot load Moonshine from {self.model_dir}: {exc}",
                                    category=ErrorCategory.UNAVAILABLE, provider=self.name) from exc
            past = tuple(i.name for i in decoder.get_inputs() if i.name.startswith("past_key_values."))
            present = tuple(o.name for o in decoder.get_outputs()[1:])
            if [p.replace("present.", "past_key_values.", 1) for p in present] != list(past):
                raise ProviderError(f"unexpected Moonshine decoder signature in {self.model_dir}",
                                    category=ErrorCategory.UNAVAILABLE, provider=self.name)
            shape = decoder.get_inputs()[2].shape  # [batch, heads, past length, head dim]
            if not (isinstance(shape[1], int) and isinstance(shape[3], int)):
                raise ProviderError(f"unexpected Moonshine cache shape {shape} in {self.model_dir}",
                                    category=ErrorCategory.UNAVAILABLE, provider=self.name)
            self._sessions = _Sessions(encoder, decoder, past, present, shape[1], shape[3], tokens)
            return self._sessions

    def _run(self, pcm: PCM, sample_rate: int) -> str:
        sessions = self._load()
        audio = resample(pcm.astype(np.int16, copy=False), sample_rate, MOONSHINE_RATE)
        samples = np.zeros((1, max(audio.size, MIN_SAMPLES)), dtype=np.float32)
        samples[0, :audio.size] = audio
        samples /= 32768.0
        run_errors: tuple[type[Exception], ...] = (ValueError, *_ort_errors())
        try:
            ids = self._decode(sessions, samples, max_tokens(audio.size / MOONSHINE_RATE))
        except run_errors as exc:
            category = ErrorCategory.BAD_REQUEST if type(exc).__name__ == "InvalidArgument" else ErrorCategory.SERVER
            raise ProviderError(f"Moonshine inference failed: {exc}", category=category, provider=self.name) from exc
        except MemoryError as exc:
            raise ProviderError("Moonshine ran out of memory", category=ErrorCategory.SERVER,
                                provider=self.name) from exc
        self.last_token_count = len(ids)
        return detokenize(sessions.tokens, ids)

    @staticmethod
    def _decode(sessions: _Sessions, samples: NDArray[np.float32], limit: int) -> list[int]:
        hidden = sessions.encoder.run(None, {"input_values": samples})[0]
        empty = np.zeros((1, sessions.kv_heads, 0, sessions.kv_dim), dtype=np.float32)
        past: dict[str, NDArray[np.float32]] = dict.fromkeys(sessions.past_names, empty)
        ids: list[int] = []
        token = BOS
        for step in range(limit):
            outputs = sessions.decoder.run(None, {
                "input_ids": np.array([[token]], dtype=np.int64), "encoder_hidden_states": hidden,
                "use_cache_branch": np.array([step > 0]), **past})
            logits = outputs[0][0, -1, :VOCAB]
            if step == 0:
                logits[EOS] = -np.inf
            token = int(np.argmax(logits))
            if token == EOS:
                break
            ids.append(token)
            for name, value in zip(sessions.past_names, outputs[1:], strict=True):
                # The cross-attention cache is computed at the first step only; later steps echo it.
                if step == 0 or ".decoder." in name:
                    past[name] = value
        return ids


def _rms_dbfs(pcm: PCM) -> float:
    rms = float(np.sqrt(np.mean(np.square(pcm.astype(np.float64)))))
    return 20 * math.log10(max(rms, 1e-9) / 32768.0)


def _ort_errors() -> tuple[type[Exception], ...]:
    """onnxruntime's exception classes (they derive from ``Exception`` directly)."""
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as state
    except ImportError:
        return ()
    names = ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "EngineError", "RuntimeException",
             "InvalidProtobuf", "ModelLoaded", "NotImplemented", "InvalidGraph", "EPFail")
    return tuple(cls for cls in (getattr(state, n, None) for n in names)
                 if isinstance(cls, type) and issubclass(cls, Exception))
