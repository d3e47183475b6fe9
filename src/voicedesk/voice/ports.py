"""Ports of the real-time voice path; adapters live in ``stt/``, ``tts/`` and ``vad.py``.

All audio crossing these ports is mono signed 16-bit PCM as numpy arrays. Engines are
loaded once and warmed up at start (``warm_up``); calls that do real work are async and
must not block the event loop (adapters run inference in a worker thread or process).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

PCM = NDArray[np.int16]


@dataclass(frozen=True)
class Transcription:
    text: str
    language: str
    audio_seconds: float
    compute_seconds: float


class SpeechToText(Protocol):
    """Turns one finished caller turn into text in a fixed language."""

    name: str

    async def warm_up(self) -> None: ...

    async def transcribe(self, pcm: PCM, sample_rate: int, language: str) -> Transcription: ...


class TextToSpeech(Protocol):
    """Synthesises one sentence; yields 8 kHz PCM chunks as soon as they exist."""

    name: str

    async def warm_up(self) -> None: ...

    def synthesize(self, text: str, language: str) -> AsyncIterator[PCM]: ...


class VoiceActivityDetector(Protocol):
    """Per-frame speech probability on 8 kHz audio; keeps its own buffering state."""

    def speech_probability(self, frame: PCM) -> float:
        """Feed one frame (any length, usually 160 samples = 20 ms) and get P(speech)."""
        ...

    def reset(self) -> None: ...
