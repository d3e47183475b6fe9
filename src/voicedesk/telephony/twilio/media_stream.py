"""Twilio Media Streams wire format <-> voice frames (bidirectional ``<Connect><Stream>``).

``TwilioMediaSerializer`` is the only place that knows Twilio's JSON: the WebSocket endpoint
moves text messages, the ``CallSession`` sees typed frames (``voice.frames``). One serializer
per stream; it is not thread-safe and needs no locking on one event loop.

Inbound (Twilio -> us), one JSON object per text message::

    connected                     -> None (handshake, no stream yet)
    start     (exactly once)      -> StreamStarted
    media     (any payload size)  -> AudioIn (8 kHz PCM, timestamp in ms since stream start)
    dtmf                          -> KeyPressed
    mark      (our mark echoed)   -> PlaybackMarked
    stop                          -> StreamStopped

Anything that cannot be trusted is dropped and counted by ``DropReason`` in
``serializer.counters``; ``parse`` never raises, so one bad message can never end a call.
Ordering uses ``sequenceNumber`` (strictly increasing per stream): duplicates and stale
messages are dropped; a forward gap is accepted and counted; an implausibly large jump is
dropped *without* moving the high-water mark, so one corrupt number cannot mute the rest of
the call.

Outbound (us -> Twilio): ``serialize`` turns ``AudioOut`` into ``media`` messages of at most
``max_chunk_bytes`` μ-law bytes (default 1 s; Twilio buffers and plays them in order),
``MarkOut`` into ``mark``, ``ClearOut`` into ``clear``; ``CloseStream`` has no wire message
(the transport closes the socket, which ends ``<Connect>``). Sending before ``start`` is a
programming error (there is no ``streamSid`` yet) and raises ``RuntimeError``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from voicedesk.voice.codecs import ulaw_decode, ulaw_encode
from voicedesk.voice.frames import (
    AudioIn,
    AudioOut,
    ClearOut,
    CloseStream,
    InboundFrame,
    KeyPressed,
    MarkOut,
    OutboundFrame,
    PlaybackMarked,
    StreamStarted,
    StreamStopped,
)

SAMPLE_RATE: Final = 8000
BYTES_PER_MS: Final = SAMPLE_RATE // 1000
DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")


class DropReason(enum.StrEnum):
    """Why an inbound message was dropped; the values are stable metric label values."""

    BAD_JSON = "bad_json"
    """Not UTF-8, not JSON, or not a JSON object."""
    TOO_LARGE = "too_large"
    """Longer than ``max_message_chars``."""
    UNKNOWN_EVENT = "unknown_event"
    """``event`` missing or not one of connected/start/media/dtmf/mark/stop."""
    MISSING_FIELD = "missing_field"
    """A required field is absent or has the wrong type."""
    BAD_FIELD = "bad_field"
    """A field is present but its value is invalid (sequence number, digit, timestamp)."""
    BAD_BASE64 = "bad_base64"
    """The media payload is not valid base64."""
    EMPTY_PAYLOAD = "empty_payload"
    """A media message without audio."""
    BEFORE_START = "before_start"
    """media/dtmf/mark before ``start``: there is no stream to attach it to."""
    DUPLICATE_START = "duplicate_start"
    """A second ``start`` on the same stream."""
    OUT_OF_ORDER = "out_of_order"
    """``sequenceNumber`` (or media timestamp) not after the last accepted one."""
    SEQUENCE_JUMP = "sequence_jump"
    """``sequenceNumber`` implausibly far ahead (more than ``max_sequence_jump``)."""
    WRONG_STREAM = "wrong_stream"
    """``streamSid`` differs from the one announced in ``start``."""
    WRONG_TRACK = "wrong_track"
    """Media of a track other than ``inbound`` (only unidirectional streams send those)."""
    AFTER_STOP = "after_stop"
    """Anything after ``stop``."""


@dataclass
class StreamCounters:
    """Per-stream counts for metrics and logs; contains no personal data.

    ``as_metrics()`` flattens them to ``{"messages_in": …, "dropped_bad_json": …}``.
    """

    messages_in: int = 0
    media_in: int = 0
    media_in_bytes: int = 0
    sequence_gaps: int = 0
    """Messages Twilio numbered but we never received (sum of forward gaps)."""
    dropped: Counter[DropReason] = field(default_factory=Counter)
    messages_out: int = 0
    media_out: int = 0
    media_out_bytes: int = 0
    marks_out: int = 0
    clears_out: int = 0

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def as_metrics(self) -> dict[str, int]:
        out = {
            "messages_in": self.messages_in,
            "media_in": self.media_in,
            "media_in_bytes": self.media_in_bytes,
            "sequence_gaps": self.sequence_gaps,
            "dropped_total": self.dropped_total,
            "messages_out": self.messages_out,
            "media_out": self.media_out,
            "media_out_bytes": self.media_out_bytes,
            "marks_out": self.marks_out,
            "clears_out": self.clears_out,
        }
        for reason in DropReason:
            out[f"dropped_{reason.value}"] = self.dropped[reason]
        return out


class _DroppedError(Exception):
    """Internal control flow: the message at hand is dropped for ``reason``."""

    def __init__(self, reason: DropReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


def _obj(msg: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = msg.get(key)
    if not isinstance(value, dict):
        raise _DroppedError(DropReason.MISSING_FIELD)
    return value


def _str(msg: Mapping[str, Any], key: str) -> str:
    value = msg.get(key)
    if not isinstance(value, str) or not value:
        raise _DroppedError(DropReason.MISSING_FIELD)
    return value


def _uint(value: Any) -> int:
    """Twilio sends numbers as decimal strings; accept JSON ints too (never bools)."""
    if isinstance(value, bool):
        raise _DroppedError(DropReason.BAD_FIELD)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
    else:
        raise _DroppedError(DropReason.BAD_FIELD)
    if number < 0:
        raise _DroppedError(DropReason.BAD_FIELD)
    return number


class TwilioMediaSerializer:
    """Parses one Twilio media stream's messages into frames and back; see the module doc.

    State after ``start``: ``stream_sid``, ``call_sid``, ``account_sid``,
    ``custom_parameters`` (the ``<Parameter>``s of the TwiML, e.g. the call token).
    """

    def __init__(
        self,
        *,
        max_chunk_bytes: int = SAMPLE_RATE,
        max_message_chars: int = 4 * 1024 * 1024,
        max_sequence_jump: int = 3000,
    ) -> None:
        if max_chunk_bytes <= 0:
            raise ValueError("max_chunk_bytes must be positive")
        self.max_chunk_bytes = max_chunk_bytes
        self.max_message_chars = max_message_chars
        self.max_sequence_jump = max_sequence_jump
        self.counters = StreamCounters()
        self.stream_sid: str | None = None
        self.call_sid: str | None = None
        self.account_sid: str | None = None
        self.custom_parameters: dict[str, str] = {}
        self.connected = False
        self.stopped = False
        self._last_sequence: int | None = None
        self._last_media_timestamp = -1
        self._samples_in = 0

    @property
    def started(self) -> bool:
        return self.stream_sid is not None

    # --- inbound ----------------------------------------------------------------------
    def parse(self, message: str | bytes) -> InboundFrame | None:
        """One WebSocket message -> at most one frame; ``None`` for handshakes and drops."""
        self.counters.messages_in += 1
        try:
            return self._parse(message)
        except _DroppedError as drop:
            self.counters.dropped[drop.reason] += 1
            return None

    def _parse(self, message: str | bytes) -> InboundFrame | None:
        if len(message) > self.max_message_chars:
            raise _DroppedError(DropReason.TOO_LARGE)
        try:
            msg = json.loads(message)
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            raise _DroppedError(DropReason.BAD_JSON) from exc
        if not isinstance(msg, dict):
            raise _DroppedError(DropReason.BAD_JSON)
        event = msg.get("event")
        if self.stopped:
            raise _DroppedError(DropReason.AFTER_STOP)
        if event == "connected":
            self.connected = True
            return None
        if event == "start":
            return self._on_start(msg)
        if event not in ("media", "dtmf", "mark", "stop"):
            raise _DroppedError(DropReason.UNKNOWN_EVENT)
        if event == "stop" and not self.started:
            # A stream that fails before ``start`` still ends; nothing else is known.
            self.stopped = True
            return StreamStopped()
        if not self.started:
            raise _DroppedError(DropReason.BEFORE_START)
        if msg.get("streamSid", self.stream_sid) != self.stream_sid:
            raise _DroppedError(DropReason.WRONG_STREAM)
        if event == "media":
            frame: InboundFrame = self._media(msg)
        elif event == "dtmf":
            digit = _str(_obj(msg, "dtmf"), "digit")
            if digit not in DTMF_DIGITS:
                raise _DroppedError(DropReason.BAD_FIELD)
            frame = KeyPressed(digit=digit)
        elif event == "mark":
            frame = PlaybackMarked(name=_str(_obj(msg, "mark"), "name"))
        else:
            frame = StreamStopped()
        self._accept_sequence(msg)
        if event == "stop":
            self.stopped = True
        return frame

    def _on_start(self, msg: Mapping[str, Any]) -> StreamStarted:
        if self.started:
            raise _DroppedError(DropReason.DUPLICATE_START)
        start = _obj(msg, "start")
        stream_sid = start.get("streamSid") or msg.get("streamSid")
        if not isinstance(stream_sid, str) or not stream_sid:
            raise _DroppedError(DropReason.MISSING_FIELD)
        call_sid = _str(start, "callSid")
        params = start.get("customParameters", {})
        if not isinstance(params, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in params.items()
        ):
            raise _DroppedError(DropReason.BAD_FIELD)
        media_format = start.get("mediaFormat")
        if isinstance(media_format, dict) and (
            media_format.get("encoding", "audio/x-mulaw") != "audio/x-mulaw"
            or media_format.get("sampleRate", SAMPLE_RATE) != SAMPLE_RATE
        ):
            raise _DroppedError(DropReason.BAD_FIELD)
        self._accept_sequence(msg)
        self.stream_sid = stream_sid
        self.call_sid = call_sid
        account_sid = start.get("accountSid")
        self.account_sid = account_sid if isinstance(account_sid, str) else None
        self.custom_parameters = dict(params)
        return StreamStarted(stream_id=stream_sid, call_sid=call_sid, custom_parameters=dict(params))

    def _media(self, msg: Mapping[str, Any]) -> AudioIn:
        media = _obj(msg, "media")
        if media.get("track", "inbound") not in ("inbound", "inbound_track"):
            raise _DroppedError(DropReason.WRONG_TRACK)
        payload = media.get("payload")
        if not isinstance(payload, str):
            raise _DroppedError(DropReason.MISSING_FIELD)
        try:
            ulaw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII characters
            raise _DroppedError(DropReason.BAD_BASE64) from exc
        if not ulaw:
            raise _DroppedError(DropReason.EMPTY_PAYLOAD)
        raw_ts = media.get("timestamp")
        # Twilio always sends it; without one, continue the clock from the audio received.
        timestamp = self._samples_in // BYTES_PER_MS if raw_ts is None else _uint(raw_ts)
        if timestamp < self._last_media_timestamp:
            raise _DroppedError(DropReason.OUT_OF_ORDER)
        self._check_sequence(msg)
        self._last_media_timestamp = timestamp
        self._samples_in += len(ulaw)
        self.counters.media_in += 1
        self.counters.media_in_bytes += len(ulaw)
        return AudioIn(pcm=ulaw_decode(ulaw), timestamp_ms=timestamp)

    def _check_sequence(self, msg: Mapping[str, Any]) -> int | None:
        raw = msg.get("sequenceNumber")
        if raw is None:
            return None
        number = _uint(raw)
        last = self._last_sequence
        if last is not None:
            if number <= last:
                raise _DroppedError(DropReason.OUT_OF_ORDER)
            if number - last > self.max_sequence_jump:
                raise _DroppedError(DropReason.SEQUENCE_JUMP)
        return number

    def _accept_sequence(self, msg: Mapping[str, Any]) -> None:
        number = self._check_sequence(msg)
        if number is None:
            return
        if self._last_sequence is not None:
            self.counters.sequence_gaps += number - self._last_sequence - 1
        self._last_sequence = number

    # --- outbound ---------------------------------------------------------------------
    def serialize(self, frame: OutboundFrame) -> list[str]:
        """One outbound frame -> the text messages to send, in order (may be empty)."""
        if isinstance(frame, CloseStream):
            return []
        stream_sid = self._require_stream()
        if isinstance(frame, AudioOut):
            return self.serialize_ulaw(ulaw_encode(frame.pcm))
        if isinstance(frame, MarkOut):
            self.counters.marks_out += 1
            self.counters.messages_out += 1
            return [_dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": frame.name}})]
        if isinstance(frame, ClearOut):
            self.counters.clears_out += 1
            self.counters.messages_out += 1
            return [_dumps({"event": "clear", "streamSid": stream_sid})]
        raise TypeError(f"not an outbound frame: {type(frame).__name__}")

    def serialize_ulaw(self, ulaw: bytes) -> list[str]:
        """Already-encoded μ-law (e.g. ElevenLabs ``ulaw_8000``) -> ``media`` messages, no re-encode."""
        stream_sid = self._require_stream()
        step = self.max_chunk_bytes
        out = [
            _dumps(
                {
                    "event": "media",
                    "streamSid": stream_sid,
                    "media": {"payload": base64.b64encode(ulaw[i : i + step]).decode("ascii")},
                }
            )
            for i in range(0, len(ulaw), step)
        ]
        self.counters.media_out += len(out)
        self.counters.messages_out += len(out)
        self.counters.media_out_bytes += len(ulaw)
        return out

    def _require_stream(self) -> str:
        if self.stream_sid is None:
            raise RuntimeError(
                "Nothing can be sent before Twilio's 'start' message (no streamSid yet); "
                "wait for the StreamStarted frame before sending audio, marks or clear."
            )
        return self.stream_sid


def _dumps(msg: Mapping[str, Any]) -> str:
    return json.dumps(msg, separators=(",", ":"))
