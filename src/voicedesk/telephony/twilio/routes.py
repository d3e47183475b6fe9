"""Twilio endpoints: incoming-call and status webhooks, transfer results, the media WebSocket.

Handlers are thin: verify (signature, call token) → one service call → TwiML or frames.
Forged requests are refused before anything is stored (R-10.3); a retried incoming-call
webhook gets the TwiML of the first answer and never a second call record.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response
from starlette.datastructures import FormData
from starlette.types import Receive, Scope, Send

from voicedesk.appointments.confirmations import Senders
from voicedesk.calls.service import (
    do_apply_status_callback,
    do_claim_stream,
    do_open_inbound_call,
    load_call_context,
)
from voicedesk.config import Settings
from voicedesk.domain.errors import AuthenticationError, NotFoundError, VoicedeskError
from voicedesk.engines import Engines
from voicedesk.store.vault import Vault
from voicedesk.telephony.live import CarrierActions, LiveCall, LiveCalls, finish_live_call, start_live_call
from voicedesk.telephony.twilio import twiml
from voicedesk.telephony.twilio.media_stream import TwilioMediaSerializer
from voicedesk.telephony.twilio.rest import TwilioCallControl
from voicedesk.telephony.twilio.signature import (
    SIGNATURE_HEADER,
    issue_call_token,
    signed_url,
    validate_signature,
    verify_call_token,
    websocket_url,
)
from voicedesk.voice.control import TransferRequest
from voicedesk.voice.frames import CloseStream, OutboundFrame, StreamStarted, StreamStopped

log = structlog.get_logger(__name__)
XML = "application/xml"
START_TIMEOUT_S = 10.0


@dataclass
class TwilioRuntime:
    """What the Twilio endpoints need; built by ``create_app``."""

    settings: Settings
    vault: Callable[[], Vault]
    engines: Callable[[], Engines]
    metrics: Any
    live: LiveCalls = field(default_factory=LiveCalls)
    rest: TwilioCallControl | None = None
    senders: Senders | None = None
    media_handler: Callable[[WebSocket], Awaitable[None]] | None = None  # set by build_router

    async def serve_media(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The media WebSocket as a bare ASGI app, outside the framework's middleware stack.

        A media stream is 50 small messages a second per call, and every message resumes the
        handler through each enclosing coroutine frame: a dozen Starlette/FastAPI middleware
        layers cost more CPU per message than parsing it (bench/FINDINGS.md). The handler is
        the same one the router serves; errors are logged and close the socket (1011).
        """
        if self.media_handler is None:
            raise RuntimeError("build_router(rt) sets the media handler before the app serves")
        ws = WebSocket(scope, receive, send)
        try:
            await self.media_handler(ws)
        except Exception:
            log.exception("media_stream_failed")
            with contextlib.suppress(Exception):
                await ws.close(code=1011)

    def auth_token(self) -> str:
        token = self.settings.twilio_token()
        if token is None:
            raise AuthenticationError("no Twilio auth token configured (VOICEDESK_TWILIO_AUTH_TOKEN)")
        return token

    def public(self, path: str) -> str:
        return self.settings.public_url + path

    def stream_url(self) -> str:
        return websocket_url(self.public("/twilio/media"))


def _xml(body: str) -> Response:
    return Response(content=body, media_type=XML)


class TwilioActions:
    """Transfer, hang-up and SMS through Twilio's REST API."""

    def __init__(self, rt: TwilioRuntime) -> None:
        self.rt = rt

    async def transfer(self, call: LiveCall, request: TransferRequest) -> None:
        rest = self.rt.rest
        target = request.target or call.ctx.profile.forwarding_number
        if rest is None or target is None or call.ctx.called_number is None:
            log.warning("transfer_impossible", reason="no Twilio account or forwarding number")
            await call.session.transfer_result("failed")
            return
        call.pending_transfer = request
        action = self.rt.public(f"/twilio/transfer-result?call={call.ctx.call_id}")
        if request.mode == "warm":
            body = twiml.warm_transfer(target, caller_id=call.ctx.called_number, action_url=action,
                                       whisper_url=self.rt.public(f"/twilio/whisper?call={call.ctx.call_id}"))
        else:
            body = twiml.cold_transfer(target, caller_id=call.ctx.called_number, action_url=action)
        try:
            await rest.update_call_twiml(call.call_sid, body)
        except VoicedeskError:
            call.pending_transfer = None
            await call.session.transfer_result("failed")

    async def hang_up(self, call: LiveCall) -> None:
        if self.rt.rest is not None:
            with contextlib.suppress(VoicedeskError):
                await self.rt.rest.hangup(call.call_sid)
        await call.send(CloseStream())

    async def send_privacy_link(self, call: LiveCall) -> None:
        url = call.ctx.profile.privacy_notice_url or self.rt.public(f"/privacy/{call.ctx.tenant_slug}")
        if self.rt.rest is None or call.ctx.caller_number is None or call.ctx.called_number is None:
            log.warning("privacy_sms_impossible")
            return
        body = (f"Datenschutzhinweis {call.ctx.profile.name}: {url}" if call.ctx.language == "de"
                else f"Privacy notice of {call.ctx.profile.name}: {url}")
        await self.rt.rest.send_sms(call.ctx.caller_number, call.ctx.called_number, body)


async def _verified_form(rt: TwilioRuntime, request: Request) -> FormData:
    """Parse the form and check ``X-Twilio-Signature`` over the public URL; refuse forgeries."""
    form = await request.form()
    url = signed_url(rt.settings.public_url, request.scope.get("raw_path") or request.url.path,
                     request.scope.get("query_string", b""))
    ok = False
    with contextlib.suppress(AuthenticationError):
        ok = validate_signature(url, form, request.headers.get(SIGNATURE_HEADER), rt.auth_token())
    if not ok:
        rt.metrics.webhooks_refused.labels(reason="bad_signature").inc()
        raise AuthenticationError("Twilio signature missing or invalid")
    return form


def _s(form: FormData, key: str) -> str | None:
    value = form.get(key)
    return value if isinstance(value, str) and value else None


def build_router(rt: TwilioRuntime) -> APIRouter:
    router = APIRouter(prefix="/twilio", tags=["twilio"])
    actions = TwilioActions(rt)

    @router.post("/voice", response_class=Response)
    async def incoming_call(request: Request) -> Response:
        form = await _verified_form(rt, request)
        call_sid, to = _s(form, "CallSid"), _s(form, "To")
        if not call_sid or not to:
            return _xml(twiml.reject())
        vault = rt.vault()

        def answer(call_id: uuid.UUID, tenant_id: uuid.UUID) -> str:
            token = issue_call_token(vault.keys.token_key, str(call_id), str(tenant_id),
                                     rt.settings.call_token_ttl_s, vault.clock.now())
            return twiml.connect_stream(rt.stream_url(), {"token": token})

        try:
            opened = await do_open_inbound_call(vault, call_sid=call_sid, from_=_s(form, "From"), to=to,
                                                caller_name=_s(form, "CallerName"),
                                                instance_id=rt.settings.instance_id, answer=answer)
        except NotFoundError:
            return _xml(twiml.reject())
        return _xml(opened.twiml or twiml.reject())

    @router.post("/status", status_code=204, response_class=Response)
    async def status_callback(request: Request) -> Response:
        form = await _verified_form(rt, request)
        call_sid, status = _s(form, "CallSid"), _s(form, "CallStatus")
        if call_sid and status:
            duration = _s(form, "CallDuration")
            await do_apply_status_callback(
                rt.vault(), call_sid=call_sid, status=status,
                duration_s=int(duration) if duration and duration.isdigit() else None,
                from_=_s(form, "From"), to=_s(form, "To"), instance_id=rt.settings.instance_id)
            if status in ("completed", "canceled", "failed", "busy", "no-answer"):
                rt.metrics.calls_total.labels(status=status).inc()
        return Response(status_code=204)

    @router.post("/transfer-result", response_class=Response)
    async def transfer_result(request: Request, call: uuid.UUID) -> Response:
        form = await _verified_form(rt, request)
        status = _s(form, "DialCallStatus") or "failed"
        live = rt.live.by_call_id(call)
        if live is None:
            return _xml(twiml.hang_up())
        outcome = twiml.transfer_outcome(status)
        live.pending_transfer = None
        vault = rt.vault()
        if outcome == "connected":
            # The human took the call and it is over: no stream will come back to finish it.
            await live.session.transfer_result(status)
            rt.live.calls.pop(live.call_sid, None)
            await finish_live_call(vault, live, rt.senders)
            return _xml(twiml.hang_up())
        token = issue_call_token(vault.keys.token_key, str(live.ctx.call_id), str(live.ctx.tenant_id),
                                 rt.settings.call_token_ttl_s, vault.clock.now())
        await live.session.transfer_result(status)
        return _xml(twiml.back_to_assistant(rt.stream_url(), {"token": token}))

    @router.post("/whisper", response_class=Response)
    async def whisper(request: Request, call: uuid.UUID) -> Response:
        await _verified_form(rt, request)
        live = rt.live.by_call_id(call)
        summary = live.pending_transfer.summary if live and live.pending_transfer else ""
        lang = "de-DE" if live is None or live.ctx.language == "de" else "en-US"
        return _xml(twiml.whisper(summary or ("Anruf vom KI-Assistenten." if lang == "de-DE" else
                                              "A call from the AI assistant."), language=lang))

    @router.websocket("/media")
    async def media(ws: WebSocket) -> None:
        await ws.accept()
        serializer = TwilioMediaSerializer()
        rt.metrics.active_calls.inc()
        live: LiveCall | None = None
        try:
            start = await asyncio.wait_for(_await_start(ws, serializer), START_TIMEOUT_S)
            if start is None:
                return
            live = await _attach(rt, actions, start)
            if live is None:
                rt.metrics.webhooks_refused.labels(reason="bad_call_token").inc()
                await ws.close(code=1008)
                return

            async def send(frame: OutboundFrame) -> None:
                if isinstance(frame, CloseStream):
                    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                        await ws.close()
                    return
                for text in serializer.serialize(frame):
                    await ws.send_text(text)

            live.attach(send)
            await live.session.handle(start)
            async for message in _messages(ws):
                frame = serializer.parse(message)
                if frame is not None:
                    await live.session.handle(frame)
                    if isinstance(frame, StreamStopped):
                        break
        except (TimeoutError, WebSocketDisconnect):
            pass
        finally:
            rt.metrics.active_calls.dec()
            for reason, n in serializer.counters.dropped.items():
                if n:
                    rt.metrics.media_dropped.labels(reason=str(reason)).inc(n)
            if live is not None:
                live.detach()
                if live.pending_transfer is None:
                    await live.session.close()
                    rt.live.calls.pop(live.call_sid, None)
                    await finish_live_call(rt.vault(), live, rt.senders)

    rt.media_handler = media
    return router


async def _messages(ws: WebSocket) -> AsyncIterator[str | bytes]:
    """Every message until the peer disconnects. Twilio sends text frames only; a binary frame
    is not an error of the transport but a malformed message, for the serializer to drop and
    count (``iter_text`` would raise ``KeyError`` on it and end the call)."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        yield text if text is not None else message.get("bytes") or b""


async def _await_start(ws: WebSocket, serializer: TwilioMediaSerializer) -> StreamStarted | None:
    async for message in _messages(ws):
        frame = serializer.parse(message)
        if isinstance(frame, StreamStarted):
            return frame
    return None


async def _attach(rt: TwilioRuntime, actions: CarrierActions, start: StreamStarted) -> LiveCall | None:
    """Verify the call token (signature, expiry, single use) and find or start the live call."""
    vault = rt.vault()
    now = vault.clock.now()
    try:
        claims = verify_call_token(vault.keys.token_key, start.custom_parameters.get("token"), now)
    except AuthenticationError:
        return None
    call_id, tenant_id = uuid.UUID(claims.call_id), uuid.UUID(claims.tenant_id)
    existing = rt.live.get(start.call_sid)
    answered = None if existing is not None else (tenant_id, call_id)
    try:
        claimed = await do_claim_stream(vault, claims.token_id, claims.expires_at.astimezone(dt.UTC),
                                        answered=answered)
    except NotFoundError:  # the call was erased meanwhile
        return None
    if not claimed:
        return None
    if existing is not None:
        return existing  # a new stream after a failed transfer
    ctx = await load_call_context(vault, tenant_id, call_id)
    live = start_live_call(vault=vault, engines=rt.engines(), settings=rt.settings, ctx=ctx,
                           call_sid=start.call_sid, actions=actions, metrics=rt.metrics)
    rt.live.calls[start.call_sid] = live
    return live
