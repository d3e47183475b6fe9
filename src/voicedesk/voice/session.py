"""``CallSession``: the real-time brain of one phone call, transport- and storage-agnostic.

Inbound frames (``voice.frames``) come in through ``handle``; outbound frames leave through
the ``send`` callback. In between, in order:

1. consent gate (``domain.consent``): the announcement, in ``ask`` mode the question;
   until consent nothing is recorded or persisted, audio lives in memory only;
2. turn detection (``turns.TurnDetector``): VAD per frame, end of turn after a hangover
   (shorter after a yes/no question); with ``speculative_stt_ms`` the turn so far is
   transcribed at a pause of that length, while the hangover still runs, and the turn uses
   that transcription if the caller said nothing more (speculative transcription);
3. one job at a time on a worker task: STT → ``Conversation.respond`` (never two dialogue
   calls at once);
4. speaking: the reply is split into sentences, each synthesised and sent as produced,
   followed by a mark; ``playback.Playback`` learns from the echoes what was heard;
5. barge-in: caller speech of ``barge_in_ms`` over interruptible audio sends ``ClearOut``,
   cancels synthesis and tells the conversation what the caller actually heard.

Time is the stream's own clock (``AudioIn.timestamp_ms``; Twilio sends audio continuously),
so deadlines (silence, consent answer, hang-up) advance with inbound audio. Latency is
measured on a monotonic ``Clock``. No exception escapes ``handle``: failures become
``SessionError`` events, transient ones are retried within the turn budget, repeated or
permanent ones end in an apology and a transfer to a human.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, TypeVar

import numpy as np

from voicedesk.dialogue.engine import Action, Conversation, Reply
from voicedesk.domain.consent import ConsentGate, GateState, GateStep, classify_answer, is_objection
from voicedesk.domain.errors import ProviderError
from voicedesk.domain.profile import Language
from voicedesk.voice.clock import Clock, SystemClock
from voicedesk.voice.control import TRANSFER_CONNECTED, CallControl, TransferRequest
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
from voicedesk.voice.playback import Playback
from voicedesk.voice.ports import SpeechToText, TextToSpeech, Transcription, VoiceActivityDetector
from voicedesk.voice.prompts import CallTexts, PromptCache
from voicedesk.voice.recorder import Recorder
from voicedesk.voice.sentences import is_backchannel, split_sentences
from voicedesk.voice.sinks import (
    ConsentSink,
    MetricsSink,
    RecordingSink,
    RecordingStart,
    Speaker,
    TurnRecord,
    TurnSink,
    TurnTimings,
)
from voicedesk.voice.turns import SpeechAbandoned, SpeechPaused, SpeechStarted, TurnDetector, TurnEnded
from voicedesk.voice.writer import BackgroundWriter

log = logging.getLogger(__name__)

T = TypeVar("T")
SAMPLE_RATE = 8000

Phase = Literal["waiting", "gate", "conversation", "transferring", "ending", "closed"]
UtteranceKind = Literal["announcement", "question", "notice", "reply", "prompt"]
Stage = Literal["stt", "dialogue", "tts", "control", "sink", "session"]
Send = Callable[[OutboundFrame], Awaitable[None]]


@dataclass(frozen=True)
class SessionConfig:
    """Per-call tuning; times in milliseconds of stream time unless named ``_s``."""

    language: Language = "de"
    consent_mode: Literal["ask", "announce"] = "ask"
    recording_enabled: bool = True
    vad_threshold: float = 0.5
    hangover_ms: int = 700
    yes_no_hangover_ms: int = 400
    min_speech_ms: int = 120
    preroll_ms: int = 200
    max_turn_ms: int = 30_000
    speculative_stt_ms: int = 0  # transcribe at a pause this long, before the hangover ends; 0: off
    barge_in_ms: int = 300
    silence_timeout_ms: int = 8_000
    consent_answer_timeout_ms: int = 6_000
    privacy_offer_timeout_ms: int = 8_000
    hangup_timeout_ms: int = 3_000
    consent_max_asks: int = 2
    turn_budget_s: float = 4.0
    retries: int = 1
    max_consecutive_failures: int = 2


@dataclass(frozen=True)
class SessionError:
    """A failure the session survived; ``category`` is an ``ErrorCategory`` value or ``internal``."""

    stage: Stage
    category: str
    permanent: bool
    at_ms: int


@dataclass
class _TurnClock:
    last_voiced: float
    endpoint: float
    stt_done: float = 0.0
    dialogue_done: float = 0.0


@dataclass(eq=False)
class _Utterance:
    id: int
    kind: UtteranceKind
    text: str
    sentences: list[str]
    reply: Reply | None
    cached: bool
    interruptible: bool
    timing: _TurnClock | None = None
    played: list[str] = field(default_factory=list)
    sent_all: bool = False
    done: bool = False
    start_ms: int | None = None
    tts_failed: bool = False

    @property
    def expects_yes_no(self) -> bool:
        if self.kind in ("question", "notice"):
            return True
        return self.reply is not None and self.reply.expects == "yes_no"


@dataclass(eq=False)
class _Speculation:
    """The transcription of a turn so far, started at a pause (``SpeechPaused``).

    It stands for the finished turn only if the turn ends with the same start and the same
    last voiced frame, i.e. the caller said nothing more after the pause.
    """

    start_ms: int
    last_voiced_ms: int
    task: asyncio.Task[Transcription]
    outcome: str | None = None  # used | stale | failed, once settled (a metric label)


@dataclass(frozen=True)
class _TurnJob:
    turn: TurnEnded
    overlapped: frozenset[int]
    barged_in: bool
    timing: _TurnClock
    speculation: _Speculation | None = None


@dataclass(frozen=True)
class _SilenceJob:
    pass


@dataclass(frozen=True)
class _GreetJob:
    pass


@dataclass(frozen=True)
class _TransferFailedJob:
    status: str


_Job = _TurnJob | _SilenceJob | _GreetJob | _TransferFailedJob
_GATE_KINDS = frozenset({"announcement", "question", "notice"})


class _StageFailedError(Exception):
    def __init__(self, stage: Stage, permanent: bool) -> None:
        super().__init__(f"{stage} failed")
        self.stage: Stage = stage
        self.permanent = permanent


def _category(exc: Exception) -> tuple[str, bool]:
    if isinstance(exc, ProviderError):
        return exc.category.value, exc.is_permanent
    return "internal", False


class CallSession:
    """One call's pipeline: consent gate, turn-taking, barge-in, keys, transfer, recording.

    Feed inbound frames with ``handle`` (or ``run`` on a queue); report the outcome of a
    transfer with ``transfer_result``; end with ``close`` (also called on ``StreamStopped``
    unless a transfer is pending, in which case a new stream may re-attach).
    """

    def __init__(
        self,
        *,
        conversation: Conversation,
        stt: SpeechToText,
        tts: TextToSpeech,
        vad: VoiceActivityDetector,
        send: Send,
        texts: CallTexts,
        control: CallControl,
        consents: ConsentSink,
        turns: TurnSink,
        recording: RecordingSink,
        metrics: MetricsSink,
        config: SessionConfig | None = None,
        prompts: PromptCache | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = cfg = config or SessionConfig(language=texts.language)
        self.conversation = conversation
        self.stt = stt
        self.tts = tts
        self.texts = texts
        self.control = control
        self.consents = consents
        self.turn_sink = turns
        self.metrics = metrics
        self.prompts = prompts or PromptCache(tts)
        self.clock: Clock = clock or SystemClock()
        self._send_frame = send
        self.gate = ConsentGate(cfg.consent_mode, texts.consent, max_asks=cfg.consent_max_asks)
        self.detector = TurnDetector(
            vad, sample_rate=SAMPLE_RATE, threshold=cfg.vad_threshold, hangover_ms=cfg.hangover_ms,
            min_speech_ms=cfg.min_speech_ms, preroll_ms=cfg.preroll_ms, max_turn_ms=cfg.max_turn_ms,
            early_ms=cfg.speculative_stt_ms or None,
        )
        self.playback = Playback(SAMPLE_RATE)
        self.recorder = Recorder(recording, on_error=self._sink_error, sample_rate=SAMPLE_RATE)
        self._consent_writer = BackgroundWriter("consent", on_error=self._sink_error)
        self._turn_writer = BackgroundWriter("turns", on_error=self._sink_error)

        self.phase: Phase = "waiting"
        self.stream: StreamStarted | None = None
        self.transcript: list[TurnRecord] = []
        self.errors: list[SessionError] = []
        self._persist_turns = False
        self._now_ms = 0
        self._stream_offset_ms = 0
        self._last_voiced_mono = 0.0
        self._utterance_ids = 0
        self._active: list[_Utterance] = []
        self._producers: set[asyncio.Task[None]] = set()
        self._aux: set[asyncio.Task[None]] = set()
        self._speculation: _Speculation | None = None  # the latest, until a turn takes it or it is stale
        self._deferred_pause: SpeechPaused | None = None  # to speculate once the running STT is done
        self._speculating: set[asyncio.Task[Transcription]] = set()  # speculative STT not finished
        self._speak_lock = asyncio.Lock()
        self._attached = asyncio.Event()
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._jobs_pending = 0
        self._worker: asyncio.Task[None] | None = None
        self._overlap_ids: frozenset[int] = frozenset()
        self._barged_in = False
        self._failures = 0
        self._silence_deadline: int | None = None
        self._answer_deadline: int | None = None
        self._hangup_deadline: int | None = None
        self._privacy_offer_until: int | None = None
        self._hung_up = False
        self._closed = asyncio.Event()
        self._finished_recent: list[_Utterance] = []

    # --- public API -------------------------------------------------------------------
    async def handle(self, frame: InboundFrame) -> None:
        """Process one inbound frame; never raises (failures become ``errors``)."""
        if self.phase == "closed":
            return
        try:
            if isinstance(frame, AudioIn):
                await self._on_audio(frame)
            elif isinstance(frame, PlaybackMarked):
                self._on_mark(frame.name)
            elif isinstance(frame, KeyPressed):
                await self._on_key(frame.digit)
            elif isinstance(frame, StreamStarted):
                self._on_start(frame)
            elif isinstance(frame, StreamStopped):
                if self.phase == "transferring":
                    self._attached.clear()
                else:
                    await self.close()
        except Exception:
            log.exception("call session failed to handle a frame")
            self._note_error("session", "internal", permanent=False)

    async def run(self, inbound: asyncio.Queue[InboundFrame | None]) -> None:
        """Consume frames until ``None`` or the session closes; always closes at the end."""
        try:
            while self.phase != "closed":
                frame = await inbound.get()
                if frame is None:
                    break
                await self.handle(frame)
        finally:
            await self.close()

    async def transfer_result(self, status: str) -> None:
        """The runtime reports how a transfer ended (Twilio ``DialCallStatus``)."""
        if self.phase != "transferring":
            return
        if status in TRANSFER_CONNECTED:
            await self.close()
            return
        self.phase = "conversation"
        self._enqueue(_TransferFailedJob(status))

    async def close(self) -> None:
        """End the session: stop speaking, settle an open gate, flush sinks. Idempotent."""
        if self.phase == "closed":
            return
        self.phase = "closed"
        await self._cancel_producers()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        await self._cancel_speculation()
        for utt in list(self._active):
            self._finish(utt, interrupted=True, heard=" ".join(utt.played))
        if self.gate.open:
            self._apply_gate_step(self.gate.ended(self.clock.now()))
        await self.recorder.close()
        await self._turn_writer.aclose()
        await self._consent_writer.aclose()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def wait_idle(self, max_spins: int = 10_000) -> None:
        """Let background work settle (jobs, synthesis, sink writes); for tests and shutdown."""
        for _ in range(max_spins):
            busy = (
                self._jobs_pending > 0
                or any(not t.done() for t in self._producers | self._aux)
                or bool(self._speculating)
                or not self._consent_writer.idle
                or not self._turn_writer.idle
            )
            if not busy:
                await self.recorder.join()
                return
            await asyncio.sleep(0)

    @property
    def speaking(self) -> bool:
        """Assistant audio is being produced or has not finished playing."""
        return bool(self._active)

    # --- inbound ----------------------------------------------------------------------
    def _on_start(self, frame: StreamStarted) -> None:
        first = self.stream is None
        self.stream = frame
        self._attached.set()
        if not first:
            # A new stream for the same call (after a transfer attempt) counts its timestamps
            # from 0 again; the call's stream time goes on from where the last stream ended.
            self._stream_offset_ms = self._now_ms
            return
        self.phase = "gate"
        self._say("announcement", self.texts.consent.announcement, cached=True, interruptible=False)

    async def _on_audio(self, frame: AudioIn) -> None:
        if self._stream_offset_ms:
            frame = AudioIn(frame.pcm, frame.timestamp_ms + self._stream_offset_ms)
        dur = frame.pcm.size * 1000 // SAMPLE_RATE
        self._now_ms = max(self._now_ms, frame.timestamp_ms + dur)
        if self.phase in ("waiting", "closed"):
            return
        self.recorder.caller(frame.pcm, frame.timestamp_ms)
        event = await self.detector.feed_async(frame)
        if self.detector.in_speech and self.detector.last_voiced_ms == frame.timestamp_ms + dur:
            self._last_voiced_mono = self.clock.monotonic()
        if isinstance(event, SpeechStarted):
            self._silence_deadline = self._answer_deadline = None
            self._overlap_ids = frozenset()
            self._barged_in = False
        elif isinstance(event, SpeechPaused):
            self._speculate(event)
        elif isinstance(event, TurnEnded):
            self._on_turn(event)
        elif isinstance(event, SpeechAbandoned):
            self._overlap_ids = frozenset()
            self._arm_waiting()
        if self.detector.in_speech and self._active:
            self._overlap_ids |= {u.id for u in self._active}
        if (
            self.detector.in_speech
            and self._overlap_ids
            and not self._barged_in
            and self.detector.voiced_ms >= self.config.barge_in_ms
            and self._active
            and all(u.interruptible for u in self._active)
        ):
            self._barged_in = True
            self._drop_speculation()
            await self._interrupt()
        await self._check_deadlines()

    def _on_turn(self, turn: TurnEnded) -> None:
        self.detector.hangover_ms = self.config.hangover_ms
        timing = _TurnClock(last_voiced=self._last_voiced_mono, endpoint=self.clock.monotonic())
        spec = self._speculation
        if spec is not None and (spec.start_ms, spec.last_voiced_ms) == (turn.start_ms, turn.last_voiced_ms):
            self._speculation = None  # the job owns it now
        else:
            spec = None
        self._drop_speculation()
        job = _TurnJob(turn, self._overlap_ids, self._barged_in, timing, spec)
        self._overlap_ids = frozenset()
        if self.phase in ("gate", "conversation"):
            self._enqueue(job)
        elif spec is not None:
            self._settle(spec, "stale")

    # --- speculative transcription ----------------------------------------------------
    def _speculate(self, pause: SpeechPaused) -> None:
        """Start transcribing the turn so far; the hangover may still find it goes on."""
        self._drop_speculation()  # a new pause in the same turn: the caller spoke again
        if self.phase not in ("gate", "conversation"):
            return
        if self._speculating:
            # One speculative STT per call at a time. The engine is shared by all calls
            # (Whisper: one worker thread), so a second job would only queue behind the stale
            # one and take CPU from other calls; this pause is speculated once that job is
            # done, if the pause still lasts then (a short "…, ähm, Dienstag" would otherwise
            # lose its speculation).
            self._deferred_pause = pause
            return
        # The turn, if it ends here, is this audio plus the rest of the hangover's quiet: give
        # the recogniser that same length of silence, so it transcribes what it would
        # transcribe at the end of the turn (Whisper's result depends on the trailing quiet).
        rest_ms = max(0, self.detector.hangover_ms - (self.detector.early_ms or 0))
        pcm = np.concatenate([pause.pcm, np.zeros(rest_ms * SAMPLE_RATE // 1000, dtype=np.int16)])
        language = self.texts.language
        task = asyncio.get_running_loop().create_task(
            self.stt.transcribe(pcm, SAMPLE_RATE, language), name="speculative-stt")
        self._speculation = _Speculation(pause.start_ms, pause.last_voiced_ms, task)
        self._speculating.add(task)
        task.add_done_callback(self._speculation_done)

    def _speculation_done(self, task: asyncio.Task[Transcription]) -> None:
        self._speculating.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a stale one's failure is of no interest; a used one's is seen there
        pause, self._deferred_pause = self._deferred_pause, None
        d = self.detector
        if pause is not None and d.in_speech and (d.start_ms, d.last_voiced_ms) == (
            pause.start_ms, pause.last_voiced_ms
        ):  # the deferred pause still lasts
            self._speculate(pause)

    def _drop_speculation(self) -> None:
        """The latest speculation no longer matches the turn (the caller went on, barge-in)."""
        if self._speculation is not None:
            self._settle(self._speculation, "stale")  # its task runs on; the result is ignored
            self._speculation = None
        self._deferred_pause = None

    def _settle(self, spec: _Speculation, outcome: str) -> None:
        if spec.outcome is not None:
            return
        spec.outcome = outcome
        try:
            self.metrics.observe_speculation(outcome)
        except Exception:
            log.exception("metrics sink failed")

    async def _cancel_speculation(self) -> None:
        """On close: a speculation still running is cancelled (a worker thread just finishes it)."""
        self._drop_speculation()
        tasks = list(self._speculating)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _transcribe(self, job: _TurnJob) -> Transcription:
        """The turn's text: the speculation's if it has one (and it worked), else a new transcription."""
        spec = job.speculation
        if spec is not None and spec.outcome is None:
            try:
                result = await spec.task
            except Exception as exc:
                category, permanent = _category(exc)
                log.warning("speculative stt failed (%s); transcribing the turn again", category)
                self._note_error("stt", category, permanent)
                self._settle(spec, "failed")
            else:
                self._settle(spec, "used")
                return result
        return await self.stt.transcribe(job.turn.pcm, SAMPLE_RATE, self.texts.language)

    def _on_mark(self, name: str) -> None:
        for mark in self.playback.echoed(name, self._now_ms):
            utt = next((u for u in self._active if u.id == mark.utterance_id), None)
            if utt is not None:
                utt.played.append(mark.sentence)
                self._check_done(utt)

    async def _on_key(self, digit: str) -> None:
        if self.phase not in ("gate", "conversation"):
            return
        now = self.clock.now()
        if digit == "2":
            was_open = self.gate.open
            self._apply_gate_step(self.gate.key("2", now))
            if not was_open:
                await self._interrupt(force=True)
                self._say_prompt(self.texts.phrases.recording_stopped)
        elif digit == "1":
            if self.gate.open:
                self._apply_gate_step(self.gate.key("1", now))
            elif self._privacy_offer_until is not None:
                self._privacy_offer_until = None
                await self._send_privacy_link()
        elif digit == "0":
            await self._interrupt(force=True)
            self._say_prompt(self.texts.phrases.connect_human, actions=(_human_transfer(),))
        elif digit == "9":
            await self._interrupt(force=True)
            if self.phase == "gate":
                self._say("notice", self.texts.privacy_notice, cached=True, interruptible=False)
            else:
                text = f"{self.texts.privacy_notice} {self.texts.phrases.privacy_offer}"
                self._say("notice", text, cached=True, interruptible=True)

    async def _check_deadlines(self) -> None:
        now = self._now_ms
        if self._hangup_deadline is not None and now >= self._hangup_deadline:
            self._hang_up()
        idle = not self.detector.in_speech and self._jobs_pending == 0 and not self._active
        if self._privacy_offer_until is not None and now >= self._privacy_offer_until:
            self._privacy_offer_until = None
        if self._answer_deadline is not None and now >= self._answer_deadline and idle:
            self._answer_deadline = None
            self._apply_gate_step(self.gate.silence(self.clock.now()))
        if self._silence_deadline is not None and now >= self._silence_deadline and idle:
            self._silence_deadline = None
            self._enqueue(_SilenceJob())

    def _arm_waiting(self) -> None:
        """Nothing is playing or pending: start waiting for the caller (silence timers)."""
        if self._active or self._jobs_pending or self.detector.in_speech:
            return
        if self.phase == "gate" and self.gate.state is GateState.ASKING and self.gate.asks > 0:
            self._answer_deadline = self._now_ms + self.config.consent_answer_timeout_ms
        elif self.phase == "conversation":
            self._silence_deadline = self._now_ms + self.config.silence_timeout_ms

    # --- jobs (one at a time) ---------------------------------------------------------
    def _enqueue(self, job: _Job) -> None:
        self._jobs_pending += 1
        self._jobs.put_nowait(job)
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="call-session-worker")

    async def _work(self) -> None:
        while True:
            job = await self._jobs.get()
            try:
                await self._run_job(job)
            except _StageFailedError as failed:
                await self._recover(failed)
            except Exception:
                log.exception("call session job failed")
                self._note_error("session", "internal", permanent=False)
            finally:
                self._jobs_pending -= 1
            self._arm_waiting()

    async def _run_job(self, job: _Job) -> None:
        if isinstance(job, _GreetJob):
            if any(u.kind in _GATE_KINDS for u in self._active):
                await self._interrupt(force=True)  # the caller decided before the gate finished speaking
            reply = await self._attempt("dialogue", self.conversation.greet)
            self._say_reply(reply)
        elif isinstance(job, _SilenceJob):
            if self.phase == "conversation":
                reply = await self._attempt("dialogue", lambda: self.conversation.respond(""))
                self._say_reply(reply)
        elif isinstance(job, _TransferFailedJob):
            reply = await self._attempt("dialogue", lambda: self.conversation.transfer_failed(job.status))
            self._say_reply(reply)
        else:
            await self._caller_turn(job)

    async def _caller_turn(self, job: _TurnJob) -> None:
        turn, timing = job.turn, job.timing
        # a retry transcribes afresh: _transcribe settles the speculation on its first attempt
        result = await self._attempt("stt", lambda: self._transcribe(job))
        timing.stt_done = self.clock.monotonic()  # after a used speculation: ~0 after the endpoint
        text = result.text.strip()
        if not text or self.phase not in ("gate", "conversation"):
            return
        overlapped = job.overlapped and not job.barged_in
        if overlapped and is_backchannel(text) and not self._answer_after_question(job):
            return  # "mhm" while the assistant spoke: not a turn
        self._add_turn("caller", text, turn.start_ms, turn.last_voiced_ms)
        now = self.clock.now()
        if self.phase == "gate":
            self._apply_gate_step(self.gate.heard(text, now))
            return
        if self._privacy_offer_until is not None:
            self._privacy_offer_until = None
            answer = classify_answer(text)
            if answer == "yes":
                await self._send_privacy_link()
                return
            if answer == "no":
                return
        if is_objection(text):
            self._apply_gate_step(self.gate.heard(text, now))
            self._say_prompt(self.texts.phrases.recording_stopped)
            return
        reply = await self._attempt("dialogue", lambda: self.conversation.respond(text))
        timing.dialogue_done = self.clock.monotonic()
        self._failures = 0
        self._say_reply(reply, timing)

    def _answer_after_question(self, job: _TurnJob) -> bool:
        """A short "ja" that ran past the end of a yes/no question answers it."""
        overlapped = [u for u in self._finished_recent if u.id in job.overlapped]
        still_playing = any(u.id in job.overlapped for u in self._active)
        return not still_playing and any(u.expects_yes_no for u in overlapped)

    async def _recover(self, failed: _StageFailedError) -> None:
        self._failures += 1
        if failed.permanent or self._failures >= self.config.max_consecutive_failures:
            self._failures = 0
            self._say_prompt(self.texts.phrases.sorry_technical, actions=(_human_transfer(),))
        else:
            self._say_prompt(self.texts.phrases.sorry_repeat)

    async def _attempt(self, stage: Stage, fn: Callable[[], Awaitable[T]]) -> T:
        deadline = self.clock.monotonic() + self.config.turn_budget_s
        tries = 0
        while True:
            try:
                return await fn()
            except Exception as exc:
                category, permanent = _category(exc)
                log.warning("%s failed (%s)", stage, category)
                self._note_error(stage, category, permanent)
                tries += 1
                if permanent or tries > self.config.retries or self.clock.monotonic() >= deadline:
                    raise _StageFailedError(stage, permanent) from exc

    # --- consent ----------------------------------------------------------------------
    def _apply_gate_step(self, step: GateStep) -> None:
        for decision in step.decisions:
            self._consent_writer.submit(partial(self.consents.record, decision))
        kinds = {d.decision for d in step.decisions}
        if "granted" in kinds:
            self._persist_turns = True
            if self.config.recording_enabled and self.stream is not None:
                self.recorder.start(RecordingStart(
                    call_sid=self.stream.call_sid, stream_id=self.stream.stream_id,
                    sample_rate=SAMPLE_RATE, offset_ms=self._now_ms,
                ))
        if "withdrawn" in kinds:
            self.recorder.discard()
            if self._persist_turns:
                self._persist_turns = False
                self._turn_writer.drop_pending()
                self._turn_writer.submit(self.turn_sink.discard)
        if step.reask and self.phase == "gate":
            self._say("question", self.texts.consent.question, cached=True, interruptible=False)
        if step.settled and self.phase == "gate":
            self.phase = "conversation"
            self._answer_deadline = None
            self._enqueue(_GreetJob())

    async def _send_privacy_link(self) -> None:
        self._spawn(self._control("send_privacy_link", self.control.send_privacy_link))
        self._say_prompt(self.texts.phrases.privacy_link_sent)

    # --- speaking ---------------------------------------------------------------------
    def _say_reply(self, reply: Reply, timing: _TurnClock | None = None) -> None:
        self._say("reply", reply.text, reply=reply, timing=timing)

    def _say_prompt(self, text: str, actions: tuple[Action, ...] = ()) -> None:
        self._say("prompt", text, reply=Reply(text=text, actions=actions), cached=True)

    def _say(
        self,
        kind: UtteranceKind,
        text: str,
        *,
        reply: Reply | None = None,
        cached: bool = False,
        interruptible: bool = True,
        timing: _TurnClock | None = None,
    ) -> None:
        self._utterance_ids += 1
        utt = _Utterance(self._utterance_ids, kind, text, split_sentences(text), reply, cached,
                         interruptible, timing)
        self._silence_deadline = self._answer_deadline = None
        self._active.append(utt)
        task = asyncio.get_running_loop().create_task(self._produce(utt), name=f"speak-{utt.id}")
        self._producers.add(task)
        task.add_done_callback(self._producers.discard)

    async def _produce(self, utt: _Utterance) -> None:
        async with self._speak_lock:
            await self._attached.wait()
            for sentence in utt.sentences:
                await self._speak_sentence(utt, sentence)
        utt.sent_all = True
        if utt.reply is not None and utt.reply.end_call:
            self._hangup_deadline = self.playback.play_end_ms(self._now_ms) + self.config.hangup_timeout_ms
        if utt.tts_failed and not utt.played and self.playback.pending_for(utt.id) == 0:
            # nothing of it could be said: a human takes over rather than leaving silence
            self._finish(utt, interrupted=False, heard="")
            if self.phase in ("gate", "conversation"):
                self.phase = "transferring"
                self._spawn(self._control("transfer", lambda: self.control.transfer(TransferRequest())))
            return
        self._check_done(utt)

    async def _speak_sentence(self, utt: _Utterance, sentence: str) -> None:
        samples = 0
        start_ms = 0
        for attempt in range(self.config.retries + 1):
            try:
                async for pcm in self._sentence_audio(sentence, utt.cached):
                    if pcm.size == 0:
                        continue
                    at = self.playback.audio_sent(pcm.size, self._now_ms)
                    if samples == 0:
                        start_ms = at
                    if utt.start_ms is None:
                        utt.start_ms = at
                    await self._send(AudioOut(pcm))
                    self.recorder.assistant(pcm, at)
                    samples += pcm.size
                    if utt.timing is not None:
                        self._report_timing(utt.timing)
                        utt.timing = None
                break
            except Exception as exc:
                category, permanent = _category(exc)
                log.warning("tts failed (%s)", category)
                self._note_error("tts", category, permanent)
                if permanent or samples or attempt >= self.config.retries:
                    utt.tts_failed = True
                    break
        if samples:
            name = self.playback.mark_sent(utt.id, sentence, samples, start_ms)
            await self._send(MarkOut(name))

    async def _sentence_audio(self, sentence: str, cached: bool) -> AsyncIterator[PCM]:
        if cached:
            yield await self.prompts.sentence(sentence, self.texts.language)
            return
        async for pcm in self.tts.synthesize(sentence, self.texts.language):
            yield pcm

    def _report_timing(self, timing: _TurnClock) -> None:
        now = self.clock.monotonic()
        timings = TurnTimings(
            voice_to_voice=now - timing.last_voiced,
            endpoint=timing.endpoint - timing.last_voiced,
            stt=timing.stt_done - timing.endpoint,
            dialogue=timing.dialogue_done - timing.stt_done,
            tts_first_audio=now - timing.dialogue_done,
        )
        try:
            self.metrics.observe_turn(timings)
        except Exception:
            log.exception("metrics sink failed")

    def _check_done(self, utt: _Utterance) -> None:
        if utt.sent_all and not utt.done and self.playback.pending_for(utt.id) == 0:
            self._finish(utt, interrupted=False, heard=" ".join(utt.played))
            self._after_played(utt)

    def _finish(self, utt: _Utterance, *, interrupted: bool, heard: str) -> None:
        utt.done = True
        if utt in self._active:
            self._active.remove(utt)
        self._finished_recent = [*self._finished_recent[-7:], utt]
        reply = utt.reply
        start = utt.start_ms if utt.start_ms is not None else self._now_ms
        self._add_turn(
            "assistant", utt.text, start, self._now_ms, interrupted=interrupted, heard=heard,
            intent=reply.intent if reply else None,
            actions=tuple(a.type for a in reply.actions) if reply else (),
        )
        if interrupted and utt.kind == "reply":
            try:
                self.conversation.heard(heard)
            except Exception:
                log.exception("conversation.heard failed")
                self._note_error("dialogue", "internal", permanent=False)

    def _after_played(self, utt: _Utterance) -> None:
        if utt.kind == "announcement":
            self._apply_gate_step(self.gate.announcement_played(self.clock.now()))
            if self.phase == "gate" and self.gate.state is GateState.ASKING:
                self._say("question", self.texts.consent.question, cached=True, interruptible=False)
            return
        if utt.kind == "question":
            self.gate.question_played()
            self.detector.hangover_ms = self.config.yes_no_hangover_ms
            self._arm_waiting()
            return
        if utt.kind == "notice":
            if self.phase == "gate":  # back to where the notice cut in
                consent = self.texts.consent
                if self.gate.state is GateState.ANNOUNCING:
                    self._say("announcement", consent.announcement, cached=True, interruptible=False)
                elif self.gate.state is GateState.ASKING:
                    self._say("question", consent.question, cached=True, interruptible=False)
                return
            self._privacy_offer_until = self._now_ms + self.config.privacy_offer_timeout_ms
            self.detector.hangover_ms = self.config.yes_no_hangover_ms
            self._arm_waiting()
            return
        reply = utt.reply
        if reply is None:
            return
        transfer = reply.transfer
        if transfer is not None and self.phase in ("gate", "conversation"):
            self.phase = "transferring"
            request = TransferRequest.from_action_data(transfer.data)
            self._spawn(self._control("transfer", lambda: self.control.transfer(request)))
            return
        if reply.end_call:
            self._hang_up()
            return
        if reply.expects == "yes_no":
            self.detector.hangover_ms = self.config.yes_no_hangover_ms
        self._arm_waiting()

    async def _interrupt(self, *, force: bool = False) -> None:
        """Stop all assistant audio now; record what of it the caller heard."""
        if not self._active:
            return
        if not force and not all(u.interruptible for u in self._active):
            return
        await self._cancel_producers()
        await self._send(ClearOut())
        _, cut = self.playback.clear(self._now_ms)
        self._hangup_deadline = None
        for utt in list(self._active):
            parts = list(utt.played)
            if cut is not None and cut.mark.utterance_id == utt.id:
                partial = cut.heard_words()
                if partial:
                    parts.append(partial)
            self._finish(utt, interrupted=True, heard=" ".join(parts))

    async def _cancel_producers(self) -> None:
        tasks = [t for t in self._producers if not t.done() and t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- call control -----------------------------------------------------------------
    def _hang_up(self) -> None:
        if self._hung_up:
            return
        self._hung_up = True
        self._hangup_deadline = None
        self.phase = "ending"
        self._spawn(self._do_hang_up())

    async def _do_hang_up(self) -> None:
        await self._control("hang_up", self.control.hang_up)
        await self._send(CloseStream())
        await self.close()

    async def _control(self, what: str, fn: Callable[[], Awaitable[None]]) -> None:
        try:
            await fn()
        except Exception as exc:
            category, permanent = _category(exc)
            log.warning("call control %s failed (%s)", what, category)
            self._note_error("control", category, permanent)
            if what == "transfer":
                await self.transfer_result("failed")

    # --- helpers ----------------------------------------------------------------------
    async def _send(self, frame: OutboundFrame) -> None:
        await self._send_frame(frame)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._aux.add(task)
        task.add_done_callback(self._aux.discard)

    def _add_turn(
        self,
        speaker: Speaker,
        text: str,
        start_ms: int,
        end_ms: int,
        *,
        interrupted: bool = False,
        heard: str | None = None,
        intent: str | None = None,
        actions: tuple[str, ...] = (),
    ) -> None:
        record = TurnRecord(
            index=len(self.transcript), speaker=speaker, text=text, start_ms=start_ms, end_ms=end_ms,
            interrupted=interrupted, heard_text=heard, intent=intent, actions=actions,
        )
        self.transcript.append(record)
        if self._persist_turns:
            sink = self.turn_sink
            self._turn_writer.submit(lambda: sink.add(record))

    def _note_error(self, stage: Stage, category: str, permanent: bool) -> None:
        self.errors.append(SessionError(stage, category, permanent, self._now_ms))
        try:
            self.metrics.observe_error(stage, category)
        except Exception:
            log.exception("metrics sink failed")

    def _sink_error(self, writer: str, exc: Exception) -> None:
        category, permanent = _category(exc)
        self._note_error("sink", category, permanent)


def _human_transfer() -> Action:
    return Action("transfer", {"mode": "cold", "target": None, "summary": ""})
