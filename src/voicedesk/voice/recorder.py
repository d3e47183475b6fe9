"""Streams both directions of a call into a ``RecordingSink`` in chunks (R-3.2, R-4.2).

Nothing is buffered before ``start`` (consent); afterwards at most ``chunk_ms`` of audio
per track sits in memory before it is handed to the sink's writer queue.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from voicedesk.voice.frames import PCM
from voicedesk.voice.sinks import RecordedChunk, RecordingSink, RecordingStart, Track
from voicedesk.voice.writer import BackgroundWriter


class _TrackBuffer:
    def __init__(self) -> None:
        self.parts: list[PCM] = []
        self.samples = 0
        self.offset_ms = 0

    def take(self) -> tuple[PCM, int]:
        pcm = np.concatenate(self.parts) if self.parts else np.zeros(0, dtype=np.int16)
        offset = self.offset_ms
        self.parts, self.samples = [], 0
        return pcm, offset


class Recorder:
    """Chunks caller and assistant audio and writes it through a background writer."""

    def __init__(
        self,
        sink: RecordingSink,
        *,
        on_error: Callable[[str, Exception], None],
        sample_rate: int = 8000,
        chunk_ms: int = 1000,
    ) -> None:
        self.sink = sink
        self.sample_rate = sample_rate
        self.chunk_samples = sample_rate * chunk_ms // 1000
        self._writer = BackgroundWriter("recording", on_error=on_error, max_pending=64)
        self._tracks: dict[Track, _TrackBuffer] = {"caller": _TrackBuffer(), "assistant": _TrackBuffer()}
        self.state: str = "idle"  # idle → recording → closed | discarded

    @property
    def recording(self) -> bool:
        return self.state == "recording"

    @property
    def dropped_chunks(self) -> int:
        return self._writer.dropped

    def start(self, start: RecordingStart) -> None:
        if self.state != "idle":
            return
        self.state = "recording"
        sink = self.sink
        self._writer.submit(lambda: sink.open(start))

    def caller(self, pcm: PCM, offset_ms: int) -> None:
        self._add("caller", pcm, offset_ms)

    def assistant(self, pcm: PCM, offset_ms: int) -> None:
        self._add("assistant", pcm, offset_ms)

    def discard(self) -> None:
        """Stop now and have the sink delete what it has (queued chunks are dropped)."""
        if self.state != "recording":
            return
        self.state = "discarded"
        for buf in self._tracks.values():
            buf.parts, buf.samples = [], 0
        self._writer.drop_pending()
        sink = self.sink
        self._writer.submit(sink.discard)

    async def close(self) -> None:
        """Flush what is buffered, close the sink, and wait for the writer."""
        if self.state == "recording":
            self.state = "closed"
            for track in ("caller", "assistant"):
                self._flush(track)
            self._writer.submit(self.sink.close)
        await self._writer.aclose()

    async def join(self) -> None:
        await self._writer.join()

    def _add(self, track: Track, pcm: PCM, offset_ms: int) -> None:
        if self.state != "recording" or pcm.size == 0:
            return
        buf = self._tracks[track]
        if not buf.parts:
            buf.offset_ms = offset_ms
        buf.parts.append(pcm)
        buf.samples += pcm.size
        if buf.samples >= self.chunk_samples:
            self._flush(track)

    def _flush(self, track: Track) -> None:
        buf = self._tracks[track]
        if not buf.parts:
            return
        pcm, offset = buf.take()
        chunk = RecordedChunk(track=track, pcm=pcm, offset_ms=offset)
        sink = self.sink
        self._writer.submit(lambda: sink.write(chunk))
