"""The FastAPI application factory (a composition root)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send
from typing_extensions import override

from voicedesk import __version__
from voicedesk.appointments.confirmations import Senders, send_due_reminders
from voicedesk.bootstrap import build_senders, open_vault
from voicedesk.calls.service import do_forget_expired_tokens
from voicedesk.clock import Clock, SystemClock
from voicedesk.config import Settings
from voicedesk.domain.errors import ConfigError, VoicedeskError
from voicedesk.engines import Engines, build_engines
from voicedesk.integrations.email import Email, EmailSender
from voicedesk.jobs.scheduler import Scheduler
from voicedesk.privacy.dsar import send_dsar_reminders
from voicedesk.privacy.registry import announce_new_processors
from voicedesk.privacy.retention import register_jobs as register_retention_jobs
from voicedesk.store import migrate
from voicedesk.store.repos.calls import close_calls_left_open
from voicedesk.store.vault import Vault
from voicedesk.telephony.twilio.rest import DEFAULT_BASE_URL, TwilioCallControl
from voicedesk.telephony.twilio.routes import TwilioRuntime, build_router
from voicedesk.web import pages
from voicedesk.web.errors import install_error_handler
from voicedesk.web.metrics import Metrics

log = structlog.get_logger(__name__)


@dataclass
class AppState:
    """Everything a request handler may reach, built once in the lifespan."""

    settings: Settings
    clock: Clock
    metrics: Metrics
    scheduler: Scheduler
    vault: Vault | None = None
    engines: Engines | None = None
    senders: Senders = field(default_factory=Senders)
    extras: dict[str, Any] = field(default_factory=dict)

    def require_vault(self) -> Vault:
        if self.vault is None:
            raise ConfigError("the store is not open yet")
        return self.vault

    def require_engines(self) -> Engines:
        if self.engines is None:
            raise ConfigError("the speech engines are not loaded")
        return self.engines


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.voicedesk
    return state


class VoicedeskApp(FastAPI):
    """FastAPI, plus WebSocket paths served directly (see ``TwilioRuntime.serve_media``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.direct_websockets: dict[str, ASGIApp] = {}

    @override
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            direct = self.direct_websockets.get(scope["path"])
            if direct is not None:
                scope["app"] = self
                await direct(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn options for serving the app (``voicedesk serve`` and the benchmark server alike).

    No permessage-deflate: a media stream is base64 μ-law that compresses poorly, and inflating
    and deflating 50 messages a second per call costs CPU on both ends for nothing.
    """
    return {"log_level": settings.log_level.lower(), "ws_max_size": 2**20, "ws_per_message_deflate": False,
            "lifespan": "on"}


def create_app(settings: Settings, *, clock: Clock | None = None, engines: Engines | None = None) -> FastAPI:
    """Build the app for ``settings``; ``engines`` replaces the offline engines (benchmarks, tests)."""
    state = AppState(settings=settings, clock=clock or SystemClock(), metrics=Metrics(), scheduler=Scheduler())
    twilio = TwilioRuntime(settings=settings, vault=state.require_vault, engines=state.require_engines,
                           metrics=state.metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.vault = await open_vault(settings, clock=state.clock)
        async with state.vault.db.transaction() as session:
            closed = await close_calls_left_open(session, settings.instance_id, state.clock.now())
        if closed:
            log.warning("calls_closed_as_interrupted", count=closed)
        state.engines = engines or build_engines(settings)
        await state.engines.warm_up()
        if settings.twilio_account_sid and settings.twilio_auth_token:
            twilio.rest = TwilioCallControl(
                settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(),
                base_url=settings.twilio_api_base or DEFAULT_BASE_URL, region=settings.twilio_region,
                edge=settings.twilio_edge)
        for hook in app.state.startup_hooks:
            await hook(state)
        state.senders = twilio.senders = build_senders(settings)
        _register_jobs(state)
        if settings.jobs_enabled:
            state.scheduler.start()
        try:
            yield
        finally:
            await state.scheduler.stop()
            for hook in reversed(app.state.shutdown_hooks):
                await hook(state)
            for live in list(twilio.live.calls.values()):
                await live.session.close()
            if twilio.rest is not None:
                await twilio.rest.aclose()
            if engines is None:  # engines given by the caller are the caller's to close
                await state.engines.aclose()
            await state.vault.close()

    app = VoicedeskApp(title="voicedesk", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.direct_websockets["/twilio/media"] = twilio.serve_media
    app.state.voicedesk = state
    app.state.startup_hooks = []
    app.state.shutdown_hooks = []
    install_error_handler(app)
    app.include_router(build_router(twilio))
    app.include_router(pages.router)
    state.extras["twilio"] = twilio

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            vault = state.require_vault()
            await vault.db.ping()
            checks["database"] = "ok"
            checks["migrations"] = "ok" if await migrate.is_current(vault.db) else "pending"
            await vault.keys.check_master_key(state.clock.now())
            checks["key"] = "ok"
        except VoicedeskError as exc:
            checks["error"] = exc.msg
        ready = checks.get("database") == "ok" and checks.get("migrations") == "ok" and checks.get("key") == "ok"
        return JSONResponse(status_code=200 if ready else 503, content={"ready": ready, "checks": checks})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _register_jobs(state: AppState) -> None:
    """The embedded deployment's periodic work; the same functions run on workers when scaled."""
    vault = state.require_vault()

    async def reminders() -> None:
        await send_due_reminders(vault, state.senders, state.clock.now())

    async def tokens() -> None:
        await do_forget_expired_tokens(vault)

    async def dsar_reminders() -> None:
        await send_dsar_reminders(vault, state.clock.now(), mailer=state.senders.email)

    async def processor_notices() -> None:
        mailer = _RegistryMailer(state.senders.email) if state.senders.email else None
        await announce_new_processors(vault, state.settings, state.clock.now(), mailer=mailer)

    state.scheduler.register("appointment-reminders", 300, reminders)
    state.scheduler.register("processor-announcements", 24 * 3600, processor_notices, initial_delay_s=60)
    state.scheduler.register("dsar-reminders", 6 * 3600, dsar_reminders)
    register_retention_jobs(state.scheduler, vault)
    state.scheduler.register("expired-call-tokens", 3600, tokens)


class _RegistryMailer:
    """The registry's ``Mailer`` port on the SMTP sender."""

    def __init__(self, email: EmailSender) -> None:
        self.email = email

    async def send(self, *, to: str, subject: str, body: str) -> None:
        await self.email.send_email(Email(to=to, subject=subject, text=body))
