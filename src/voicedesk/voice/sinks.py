"""Ports through which a ``CallSession`` hands over what a call produces.

The storage and web layers implement them (``calls/`` persists turns, consents and
recordings; ``web/`` maps timings to Prometheus). Each call gets its own sink instances
from the runtime, so no method takes a call id. Methods are awaited off the audio path
(the session queues them), and a failing sink never ends the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from voicedesk.domain.consent import ConsentDecision
from voicedesk.voice.frames import PCM

Speaker = Literal["caller", "assistant"]
Track = Literal["caller", "assistant"]


@dataclass(frozen=True)
class TurnRecord:
    """One finished transcript turn (R-3.2).

    Offsets count milliseconds from the start of the media stream. For the assistant,
    ``text`` is what it meant to say and ``heard_text`` what was actually played before an
    interruption (equal to ``text`` when it played to the end).
    """

    index: int
    speaker: Speaker
    text: str
    start_ms: int
    end_ms: int
    interrupted: bool = False
    heard_text: str | None = None
    intent: str | None = None
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecordingStart:
    """Opens a recording: mono 16-bit PCM per track at ``sample_rate``."""

    call_sid: str
    stream_id: str
    sample_rate: int
    offset_ms: int  # stream time at which the recording begins


@dataclass(frozen=True)
class RecordedChunk:
    """A piece of one track; ``offset_ms`` is stream time of its first sample."""

    track: Track
    pcm: PCM
    offset_ms: int


@dataclass(frozen=True)
class TurnTimings:
    """Latency of one caller turn → assistant reply, in seconds; no personal data.

    ``voice_to_voice`` runs from the caller's last voiced frame to the first reply audio
    frame sent; the stages are ``endpoint`` (last voiced frame → end of turn decided),
    ``stt``, ``dialogue`` and ``tts_first_audio`` (synthesis start → first audio sent).
    """

    voice_to_voice: float
    endpoint: float
    stt: float
    dialogue: float
    tts_first_audio: float


class RecordingSink(Protocol):
    """Streams one call's audio into storage in chunks; opened only after consent."""

    async def open(self, start: RecordingStart) -> None: ...

    async def write(self, chunk: RecordedChunk) -> None: ...

    async def discard(self) -> None:
        """The caller objected: stop and delete everything recorded of this call."""
        ...

    async def close(self) -> None: ...


class TurnSink(Protocol):
    """Persists transcript turns at once; used only with transcription consent."""

    async def add(self, turn: TurnRecord) -> None: ...

    async def discard(self) -> None:
        """Consent was withdrawn: delete the turns of this call persisted so far."""
        ...


class ConsentSink(Protocol):
    """Stores every consent decision (always, whatever the decision)."""

    async def record(self, decision: ConsentDecision) -> None: ...


class MetricsSink(Protocol):
    """Observes per-turn latency and error counts (no personal data)."""

    def observe_turn(self, timings: TurnTimings) -> None: ...

    def observe_error(self, stage: str, category: str) -> None: ...

    def observe_speculation(self, outcome: str) -> None:
        """A speculative transcription settled: ``used``, ``stale`` (the caller went on) or ``failed``."""
        ...
