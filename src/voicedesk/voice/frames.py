"""Typed frames between the carrier transport and a ``CallSession``.

The telephony serializer turns wire messages into the inbound frames and the outbound
frames into wire messages; the session never sees JSON or base64. Frames are immutable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

PCM = NDArray[np.int16]


# --- transport -> session ---------------------------------------------------------
@dataclass(frozen=True)
class StreamStarted:
    """The carrier opened the media stream (Twilio ``start``)."""

    stream_id: str
    call_sid: str
    custom_parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AudioIn:
    """Caller audio, 8 kHz PCM; ``timestamp_ms`` counts from the start of the stream."""

    pcm: PCM
    timestamp_ms: int


@dataclass(frozen=True)
class KeyPressed:
    """A DTMF digit (``0-9``, ``*``, ``#``)."""

    digit: str


@dataclass(frozen=True)
class PlaybackMarked:
    """The carrier echoed a mark: all audio before it was played (or flushed by ``clear``)."""

    name: str


@dataclass(frozen=True)
class StreamStopped:
    """The carrier ended the stream (caller hung up or the call was redirected)."""


InboundFrame = StreamStarted | AudioIn | KeyPressed | PlaybackMarked | StreamStopped


# --- session -> transport ---------------------------------------------------------
@dataclass(frozen=True)
class AudioOut:
    """Assistant audio, 8 kHz PCM, to be queued for playback in order."""

    pcm: PCM


@dataclass(frozen=True)
class MarkOut:
    """Ask the carrier to echo ``name`` once everything queued before it has played."""

    name: str


@dataclass(frozen=True)
class ClearOut:
    """Drop all queued assistant audio now (barge-in)."""


@dataclass(frozen=True)
class CloseStream:
    """End the media stream; with no TwiML after ``<Connect>`` this ends the call."""


OutboundFrame = AudioOut | MarkOut | ClearOut | CloseStream
