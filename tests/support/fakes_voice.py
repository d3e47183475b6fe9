"""Fake implementations of the voice ports, and a simulated carrier to drive a ``CallSession``.

Audio is generated: caller "speech" is a sine tone whose frequency stands for a phrase
(``FakeSpeechToText`` finds the dominant frequency and looks the phrase up), assistant
"speech" is a tone whose length grows with the text. ``run_frames`` plays the part of
Twilio: it feeds inbound frames in stream time, plays outbound audio on a simulated
8 samples/ms clock, echoes marks when their audio has played and flushes them on ``clear``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voicedesk.dialogue.engine import Reply
from voicedesk.domain.consent import ConsentDecision, ConsentTexts
from voicedesk.voice.control import TransferRequest
from voicedesk.voice.frames import (
    PCM,
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
from voicedesk.voice.ports import Transcription
from voicedesk.voice.prompts import PHRASES, CallTexts
from voicedesk.voice.session import CallSession, SessionConfig
from voicedesk.voice.sinks import RecordedChunk, RecordingStart, TurnRecord, TurnTimings
from voicedesk.voice.turns import TurnDetector, TurnEvent

RATE = 8000
FRAME_MS = 20
EPOCH = dt.datetime(2025, 3, 4, 9, 0, tzinfo=dt.UTC)


def tone(freq: float, ms: int, amplitude: int = 8000) -> PCM:
    t = np.arange(RATE * ms // 1000) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def silence(ms: int) -> PCM:
    return np.zeros(RATE * ms // 1000, dtype=np.int16)


def ms_of(pcm: PCM) -> int:
    return pcm.size * 1000 // RATE


class FakeClock:
    """Monotonic time = simulated stream time + simulated compute time of the fakes."""

    def __init__(self) -> None:
        self.stream_s = 0.0
        self.compute_s = 0.0

    def monotonic(self) -> float:
        return self.stream_s + self.compute_s

    def now(self) -> dt.datetime:
        return EPOCH + dt.timedelta(seconds=self.monotonic())

    def spend(self, seconds: float) -> None:
        self.compute_s += seconds


class FakeVad:
    """An energy VAD: a frame is speech when its RMS exceeds ``threshold``."""

    def __init__(self, threshold: float = 500.0) -> None:
        self.threshold = threshold
        self.resets = 0

    def speech_probability(self, frame: PCM) -> float:
        if frame.size == 0:
            return 0.0
        rms = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2)))
        return 1.0 if rms > self.threshold else 0.0

    def reset(self) -> None:
        self.resets += 1


class FakeSpeechToText:
    """Transcribes a tone to the phrase registered for its frequency (±20 Hz)."""

    name = "fake-stt"

    def __init__(self, phrases: dict[int, str], clock: FakeClock, *, compute_s: float = 0.0) -> None:
        self.phrases = phrases
        self.clock = clock
        self.compute_s = compute_s
        self.failures: list[Exception] = []
        self.calls = 0
        self.hold: asyncio.Event | None = None  # when set to an unset event, transcribe waits on it

    async def warm_up(self) -> None:
        return None

    async def transcribe(self, pcm: PCM, sample_rate: int, language: str) -> Transcription:
        self.calls += 1
        self.clock.spend(self.compute_s)
        if self.hold is not None:
            await self.hold.wait()
        if self.failures:
            raise self.failures.pop(0)
        spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
        peak = float(np.argmax(spectrum)) * sample_rate / max(pcm.size, 1)
        text = next((t for f, t in self.phrases.items() if abs(f - peak) <= 20), "")
        return Transcription(text=text, language=language, audio_seconds=pcm.size / sample_rate,
                             compute_seconds=self.compute_s)


class FakeTextToSpeech:
    """A 300 Hz tone, ``ms_per_char`` per character of text, in 100 ms chunks."""

    name = "fake-tts"

    def __init__(self, clock: FakeClock, *, ms_per_char: int = 25, first_audio_s: float = 0.0) -> None:
        self.clock = clock
        self.ms_per_char = ms_per_char
        self.first_audio_s = first_audio_s
        self.failures: list[Exception] = []
        self.sentences: list[str] = []
        self.hold_after: int | None = None  # sentences after this many wait for ``release``
        self.release = asyncio.Event()

    async def warm_up(self) -> None:
        return None

    def duration_ms(self, text: str) -> int:
        return len(text) * self.ms_per_char

    async def synthesize(self, text: str, language: str) -> AsyncIterator[PCM]:
        self.sentences.append(text)
        self.clock.spend(self.first_audio_s)
        if self.hold_after is not None and len(self.sentences) > self.hold_after:
            await self.release.wait()
        if self.failures:
            raise self.failures.pop(0)
        audio = tone(300, self.duration_ms(text), amplitude=4000)
        for i in range(0, audio.size, RATE // 10):
            yield audio[i : i + RATE // 10]


class FakeConversation:
    """A scripted conversation: a reply per known utterance, ``fallback`` otherwise."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        greeting: Reply,
        replies: dict[str, Reply] | None = None,
        fallback: Reply | None = None,
        on_silence: Reply | None = None,
        on_transfer_failed: Reply | None = None,
        compute_s: float = 0.0,
    ) -> None:
        self.clock = clock
        self.greeting = greeting
        self.replies = replies or {}
        self.fallback = fallback or Reply("Could you say that again?")
        self.on_silence = on_silence or Reply("Are you still there?")
        self.on_transfer_failed = on_transfer_failed or Reply(
            "Nobody is free right now. May I take a message?", intent="message")
        self.compute_s = compute_s
        self.utterances: list[str] = []
        self.heard_texts: list[str] = []
        self.transfer_failures: list[str] = []
        self.failures: list[Exception] = []
        self.greeted = 0

    async def greet(self) -> Reply:
        self.greeted += 1
        return self.greeting

    async def respond(self, utterance: str) -> Reply:
        self.utterances.append(utterance)
        self.clock.spend(self.compute_s)
        if self.failures:
            raise self.failures.pop(0)
        if utterance == "":
            return self.on_silence
        return self.replies.get(utterance, self.fallback)

    async def transfer_failed(self, reason: str) -> Reply:
        self.transfer_failures.append(reason)
        return self.on_transfer_failed

    def heard(self, text: str) -> None:
        self.heard_texts.append(text)


@dataclass
class FakeCallControl:
    clock: FakeClock
    transfers: list[TransferRequest] = field(default_factory=list)
    hang_ups: int = 0
    privacy_links: int = 0
    log: list[tuple[str, float]] = field(default_factory=list)

    async def transfer(self, request: TransferRequest) -> None:
        self.transfers.append(request)
        self.log.append(("transfer", self.clock.stream_s))

    async def hang_up(self) -> None:
        self.hang_ups += 1
        self.log.append(("hang_up", self.clock.stream_s))

    async def send_privacy_link(self) -> None:
        self.privacy_links += 1
        self.log.append(("privacy_link", self.clock.stream_s))


@dataclass
class FakeRecordingSink:
    start: RecordingStart | None = None
    chunks: list[RecordedChunk] = field(default_factory=list)
    discarded: bool = False
    closed: bool = False

    async def open(self, start: RecordingStart) -> None:
        self.start = start

    async def write(self, chunk: RecordedChunk) -> None:
        self.chunks.append(chunk)

    async def discard(self) -> None:
        self.discarded = True
        self.chunks.clear()

    async def close(self) -> None:
        self.closed = True

    def samples(self, track: str) -> int:
        return sum(c.pcm.size for c in self.chunks if c.track == track)


@dataclass
class FakeTurnSink:
    turns: list[TurnRecord] = field(default_factory=list)
    discarded: bool = False

    async def add(self, turn: TurnRecord) -> None:
        self.turns.append(turn)

    async def discard(self) -> None:
        self.discarded = True
        self.turns.clear()


@dataclass
class FakeConsentSink:
    decisions: list[ConsentDecision] = field(default_factory=list)

    async def record(self, decision: ConsentDecision) -> None:
        self.decisions.append(decision)


@dataclass
class FakeMetricsSink:
    timings: list[TurnTimings] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    speculations: list[str] = field(default_factory=list)

    def observe_turn(self, timings: TurnTimings) -> None:
        self.timings.append(timings)

    def observe_error(self, stage: str, category: str) -> None:
        self.errors.append((stage, category))

    def observe_speculation(self, outcome: str) -> None:
        self.speculations.append(outcome)


class FakeCarrier:
    """Twilio's side of the media stream: in-order playout at 8 samples/ms, mark echoes."""

    def __init__(self) -> None:
        self.sent: list[OutboundFrame] = []
        self.now_ms = 0
        self.play_end_ms = 0
        self.pending: list[tuple[int, str]] = []
        self.flushed: list[str] = []
        self.played_ms = 0

    async def receive(self, frame: OutboundFrame) -> None:
        self.sent.append(frame)
        if isinstance(frame, AudioOut):
            start = max(self.now_ms, self.play_end_ms)
            self.play_end_ms = start + ms_of(frame.pcm)
        elif isinstance(frame, MarkOut):
            self.pending.append((max(self.play_end_ms, self.now_ms), frame.name))
        elif isinstance(frame, ClearOut):
            self.flushed.extend(name for _, name in self.pending)
            self.pending = [(self.now_ms, name) for _, name in self.pending]  # echoed at once
            self.play_end_ms = self.now_ms

    def due(self, now_ms: int) -> list[PlaybackMarked]:
        ready = [name for due, name in self.pending if due <= now_ms]
        self.pending = [(due, name) for due, name in self.pending if due > now_ms]
        return [PlaybackMarked(name) for name in ready]

    @property
    def closed(self) -> bool:
        return any(isinstance(f, CloseStream) for f in self.sent)


class Caller:
    """Builds the inbound frame script of a call, 20 ms audio frames in stream time."""

    def __init__(self) -> None:
        self.t = 0
        self.frames: list[InboundFrame] = []

    def start(self, call_sid: str = "CA0001") -> Caller:
        self.frames.append(StreamStarted(stream_id="MZ0001", call_sid=call_sid))
        return self

    def audio(self, pcm: PCM) -> Caller:
        step = RATE * FRAME_MS // 1000
        for i in range(0, pcm.size, step):
            chunk = pcm[i : i + step]
            self.frames.append(AudioIn(pcm=chunk, timestamp_ms=self.t))
            self.t += ms_of(chunk)
        return self

    def silence(self, ms: int) -> Caller:
        return self.audio(silence(ms))

    def say(self, freq: int, ms: int = 600) -> Caller:
        return self.audio(tone(freq, ms))

    def key(self, digit: str) -> Caller:
        self.frames.append(KeyPressed(digit))
        return self

    def stop(self) -> Caller:
        self.frames.append(StreamStopped())
        return self


DEFAULT_TEXTS = CallTexts(
    language="en",
    consent=ConsentTexts(version="test-v1", announcement="This call may be recorded.",
                         question="Do you agree? Say yes or no."),
    privacy_notice="Short privacy notice.",
    phrases=PHRASES["en"],
)


@dataclass
class FakeCall:
    """A ``CallSession`` wired to fakes, plus a caller script and a carrier."""

    session: CallSession
    carrier: FakeCarrier
    clock: FakeClock
    stt: FakeSpeechToText
    tts: FakeTextToSpeech
    vad: FakeVad
    conversation: FakeConversation
    control: FakeCallControl
    recording: FakeRecordingSink
    turns: FakeTurnSink
    consents: FakeConsentSink
    metrics: FakeMetricsSink
    caller: Caller

    def audio_out_ms(self) -> int:
        return sum(ms_of(f.pcm) for f in self.carrier.sent if isinstance(f, AudioOut))


def make_call(
    *,
    phrases: dict[int, str] | None = None,
    greeting: Reply | None = None,
    replies: dict[str, Reply] | None = None,
    texts: CallTexts = DEFAULT_TEXTS,
    stt_compute_s: float = 0.0,
    dialogue_compute_s: float = 0.0,
    tts_first_audio_s: float = 0.0,
    tts_ms_per_char: int = 25,
    **config: Any,
) -> FakeCall:
    clock = FakeClock()
    carrier = FakeCarrier()
    stt = FakeSpeechToText(phrases or {}, clock, compute_s=stt_compute_s)
    tts = FakeTextToSpeech(clock, first_audio_s=tts_first_audio_s, ms_per_char=tts_ms_per_char)
    vad = FakeVad()
    conversation = FakeConversation(clock, greeting=greeting or Reply("Hello, how can I help?"),
                                    replies=replies, compute_s=dialogue_compute_s)
    control = FakeCallControl(clock)
    recording, turns = FakeRecordingSink(), FakeTurnSink()
    consents, metrics = FakeConsentSink(), FakeMetricsSink()
    config.setdefault("language", texts.language)
    session = CallSession(
        conversation=conversation, stt=stt, tts=tts, vad=vad, send=carrier.receive, texts=texts,
        control=control, consents=consents, turns=turns, recording=recording, metrics=metrics,
        config=SessionConfig(**config), clock=clock,
    )
    return FakeCall(session, carrier, clock, stt, tts, vad, conversation, control, recording, turns,
                    consents, metrics, Caller())


async def run_frames(
    call: FakeCall, send: Sequence[InboundFrame] | None = None, *, spins: int = 10_000
) -> list[OutboundFrame]:
    """Feed ``send`` (default: the call's caller script) and return all outbound frames.

    Before each audio frame, marks whose audio has played by then are echoed; after a
    ``clear``, the flushed marks are echoed at once (as Twilio does). After each frame the
    session's background work may run for up to ``spins`` loop iterations (lower it when a
    fake deliberately blocks).
    """
    session, carrier = call.session, call.carrier
    frames = call.caller.frames if send is None else send
    for frame in frames:
        if isinstance(frame, AudioIn):
            carrier.now_ms = frame.timestamp_ms
            call.clock.stream_s = frame.timestamp_ms / 1000
        for mark in carrier.due(carrier.now_ms):
            await session.handle(mark)
            await session.wait_idle(spins)
        await session.handle(frame)
        await session.wait_idle(spins)
        for mark in carrier.due(carrier.now_ms):
            await session.handle(mark)
            await session.wait_idle(spins)
    return carrier.sent


def feed_turn_detector(detector: TurnDetector, *parts: np.ndarray) -> list[TurnEvent]:
    """The events a turn detector yields for ``parts`` played back to back in 20 ms frames."""
    from tests.support.audio import frames

    events = []
    for i, frame in enumerate(frames(np.concatenate(parts), 20)):
        event = detector.feed(AudioIn(frame, i * 20))
        if event is not None:
            events.append(event)
    return events
