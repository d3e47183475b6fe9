"""Live calls of this instance: one ``CallSession`` per call, wired to the store and Twilio.

A ``LiveCall`` outlives a single media stream: a transfer ends the stream; if the human
does not answer, Twilio opens a new stream that re-attaches to the same session.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from voicedesk.appointments.confirmations import Senders, send_confirmation
from voicedesk.appointments.service import StoreDialogueTools
from voicedesk.calls.service import CallContext, do_finish_call
from voicedesk.calls.sinks import CallRef, StoreConsentSink, StoreRecordingSink, StoreTurnSink
from voicedesk.config import Settings
from voicedesk.dialogue.engine import CallerContext, Conversation, ConversationLog
from voicedesk.dialogue.summary import summarize
from voicedesk.domain.consent import ConsentTexts
from voicedesk.engines import Engines
from voicedesk.store.vault import Vault
from voicedesk.voice.control import TransferRequest
from voicedesk.voice.frames import OutboundFrame
from voicedesk.voice.prompts import PHRASES, CallTexts
from voicedesk.voice.session import CallSession, SessionConfig
from voicedesk.voice.sinks import TurnTimings

log = structlog.get_logger(__name__)
Send = Callable[[OutboundFrame], Awaitable[None]]


class PrometheusMetricsSink:
    """Maps session timings to the fixed metric names (no labels with personal data)."""

    def __init__(self, metrics: object) -> None:
        self.metrics = metrics

    def observe_turn(self, timings: TurnTimings) -> None:
        m = self.metrics
        m.voice_to_voice.observe(timings.voice_to_voice)  # type: ignore[attr-defined]
        for stage in ("endpoint", "stt", "dialogue", "tts_first_audio"):
            m.turn_stage.labels(stage=stage).observe(getattr(timings, stage))  # type: ignore[attr-defined]

    def observe_error(self, stage: str, category: str) -> None:
        log.warning("call_stage_error", stage=stage, category=category)

    def observe_speculation(self, outcome: str) -> None:
        self.metrics.speculative_stt.labels(outcome=outcome).inc()  # type: ignore[attr-defined]


class CarrierActions(Protocol):
    """What the live call needs from the carrier; implemented for Twilio in ``twilio/routes``."""

    async def transfer(self, call: LiveCall, request: TransferRequest) -> None: ...

    async def hang_up(self, call: LiveCall) -> None: ...

    async def send_privacy_link(self, call: LiveCall) -> None: ...


class _Control:
    """The session's ``CallControl``; bound to its ``LiveCall`` once that exists."""

    def __init__(self, actions: CarrierActions) -> None:
        self.actions = actions
        self.call: LiveCall | None = None

    def _live(self) -> LiveCall:
        if self.call is None:
            raise RuntimeError("control used before the live call was bound")
        return self.call

    async def transfer(self, request: TransferRequest) -> None:
        await self.actions.transfer(self._live(), request)

    async def hang_up(self) -> None:
        await self.actions.hang_up(self._live())

    async def send_privacy_link(self) -> None:
        await self.actions.send_privacy_link(self._live())


@dataclass(eq=False)
class LiveCall:
    ctx: CallContext
    call_sid: str
    session: CallSession
    conversation: Conversation
    pending_transfer: TransferRequest | None = None
    _send: Send | None = None
    _ended: asyncio.Event = field(default_factory=asyncio.Event)

    def attach(self, send: Send) -> None:
        self._send = send

    def detach(self) -> None:
        self._send = None

    async def send(self, frame: OutboundFrame) -> None:
        if self._send is not None:
            await self._send(frame)


class LiveCalls:
    """Registry of this instance's live calls (by Twilio CallSid)."""

    def __init__(self) -> None:
        self.calls: dict[str, LiveCall] = {}

    def get(self, call_sid: str) -> LiveCall | None:
        return self.calls.get(call_sid)

    def by_call_id(self, call_id: uuid.UUID) -> LiveCall | None:
        return next((c for c in self.calls.values() if c.ctx.call_id == call_id), None)


def start_live_call(
    *, vault: Vault, engines: Engines, settings: Settings, ctx: CallContext, call_sid: str,
    actions: CarrierActions, metrics: object,
) -> LiveCall:
    """Build the session for a call whose media stream just started."""
    language = ctx.language
    ref = CallRef(ctx.tenant_id, ctx.call_id, ctx.subject_id, ctx.key_id)
    tools = StoreDialogueTools(vault, ctx.tenant_id, call_id=ctx.call_id, caller_phone=ctx.caller_number,
                               actor="assistant")
    caller = CallerContext(profile=ctx.profile, language=language, now=vault.clock.now(),
                           caller_number=ctx.caller_number, known_name=ctx.known_name, channel="phone")
    conversation = engines.dialogue.open(caller, tools)
    texts = CallTexts(
        language=language,
        consent=ConsentTexts(version=ctx.announcement_version, announcement=ctx.announcement,
                             question=ctx.consent_question),
        privacy_notice=ctx.privacy_notice, phrases=PHRASES[language],
    )
    config = SessionConfig(
        language=language, consent_mode=ctx.profile.consent_mode, recording_enabled=ctx.profile.recording_enabled,
        **({"hangover_ms": engines.hangover_ms} if engines.hangover_ms else {}),
        speculative_stt_ms=settings.speculative_stt_ms if settings.speculative_stt else 0,
    )
    holder: list[LiveCall] = []

    async def send(frame: OutboundFrame) -> None:
        await holder[0].send(frame)

    control = _Control(actions)
    session = CallSession(
        conversation=conversation, stt=engines.stt_for(language), tts=engines.tts_for(language),
        vad=engines.vad_factory(), send=send, texts=texts, control=control,
        consents=StoreConsentSink(vault, ref), turns=StoreTurnSink(vault, ref),
        recording=StoreRecordingSink(vault, ref), metrics=PrometheusMetricsSink(metrics), config=config,
        prompts=engines.prompt_cache(language),
    )
    live = LiveCall(ctx=ctx, call_sid=call_sid, session=session, conversation=conversation)
    holder.append(live)
    control.call = live
    return live


async def finish_live_call(vault: Vault, live: LiveCall, senders: Senders | None = None) -> None:
    """After the session closed: outcome and summary onto the call record, then confirmations."""
    summary = outcome = None
    booked: list[str] = []
    conversation_log = getattr(live.conversation, "log", None)
    if isinstance(conversation_log, ConversationLog):
        s = summarize(conversation_log)
        summary = s.text
        outcome = ("appointment" if s.appointment else "message" if s.message
                   else "transfer" if "human" in s.intents else "information" if "faq" in s.intents else "other")
        booked = [str(a.data["id"]) for r in conversation_log.replies for a in r.actions
                  if a.type in ("book", "reschedule") and a.data.get("id")]
    else:
        log.warning("summary_unavailable", engine=type(live.conversation).__name__)
    await do_finish_call(vault, live.ctx.tenant_id, live.ctx.call_id, outcome=outcome, summary=summary)
    if senders is not None and (senders.sms or senders.email):
        for appointment_id in dict.fromkeys(booked):
            delivery = await send_confirmation(vault, senders, live.ctx.tenant_id, appointment_id,
                                               actor="system:call-runtime")
            log.info("confirmation_sent", sms=delivery.sms, email=delivery.email, skipped=delivery.skipped)
