"""``voicedesk dsar …`` and ``voicedesk consent show``: data-subject requests and consent records.

Each command parses, calls one service in ``voicedesk.privacy`` and prints the result; the
services audit. Errors print as one line (``VoicedeskError`` → ``run``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.table import Table

from voicedesk.bootstrap import build_senders
from voicedesk.cli.app import app
from voicedesk.cli.common import actor, console, run, settings_of, with_vault
from voicedesk.config import Settings
from voicedesk.domain.errors import ConfigError, InvalidInputError
from voicedesk.domain.profile import TenantProfile
from voicedesk.integrations.email import EmailSender
from voicedesk.integrations.processors import Processor
from voicedesk.integrations.sms import DEFAULT_BASE_URL, TwilioSms
from voicedesk.privacy import dsar
from voicedesk.privacy.consents import CallConsents, list_call_consents
from voicedesk.privacy.erasure import ErasureReport, do_erase
from voicedesk.privacy.export import ExportReport, do_export
from voicedesk.privacy.restore import ReplayReport, replay_erasure_ledger
from voicedesk.store.repos.subjects import CONTACT_FIELDS
from voicedesk.store.vault import Vault

dsar_app = typer.Typer(help="Data-subject requests (GDPR Art. 15–21): create, verify, carry out.",
                       no_args_is_help=True)
consent_app = typer.Typer(help="Consent records of calls.", no_args_is_help=True)
app.add_typer(dsar_app, name="dsar")
app.add_typer(consent_app, name="consent")

RequestId = Annotated[str, typer.Argument(help="the request id (printed by `dsar create`)")]


# --- adapters chosen here, at the composition root ------------------------------------------------


def _sms_for(settings: Settings) -> Callable[[TenantProfile], dsar.CodeSender]:
    """The configured SMS sender, else one sending from the tenant's own Twilio number."""
    configured = build_senders(settings).sms
    if configured is not None:
        return lambda _profile: configured
    if not settings.twilio_account_sid or settings.twilio_auth_token is None:
        raise ConfigError("SMS is not configured (VOICEDESK_TWILIO_ACCOUNT_SID / VOICEDESK_TWILIO_AUTH_TOKEN); "
                          "confirm the identity with --staff instead")
    sid, token = settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value()

    def make(profile: TenantProfile) -> dsar.CodeSender:
        if not profile.twilio_numbers:
            raise ConfigError("the tenant has no Twilio number to send the code from")
        return TwilioSms(account_sid=sid, auth_token=token, sender=profile.twilio_numbers[0],
                         region=settings.twilio_region, edge=settings.twilio_edge,
                         base_url=settings.twilio_api_base or DEFAULT_BASE_URL)

    return make


def _mailer(settings: Settings) -> EmailSender | None:
    return build_senders(settings).email


def processors_of(settings: Settings) -> list[Processor]:
    """The processors of this deployment, from its configured adapters (until ``privacy.registry`` lands)."""
    out: list[Processor] = []
    if settings.twilio_account_sid:
        eu = (settings.twilio_region or "").lower() == "ie1"
        out.append(Processor(
            name="Twilio", purpose="telephony: carrying calls and call control",
            location="Ireland (Twilio IE1 region)" if eu else "USA (Twilio US1)",
            data_categories=("phone numbers", "call audio", "call metadata"),
            transfer_safeguard=None if eu else "EU SCC (Twilio DPA)"))
        out.append(TwilioSms(account_sid=settings.twilio_account_sid, auth_token="", sender="",
                             region=settings.twilio_region).processor)
    mailer = _mailer(settings)
    if mailer is not None:
        out.append(mailer.processor)
    if settings.dialogue_engine == "llm" and settings.llm_base_url:
        out.append(Processor(name=urlsplit(settings.llm_base_url).hostname or settings.llm_base_url,
                             purpose="dialogue: language model answering callers", location="as configured",
                             data_categories=("transcribed caller speech", "assistant replies")))
    return out


# --- dsar ------------------------------------------------------------------------------------------


def _print_view(view: dsar.DsarView) -> None:
    table = Table("field", "value", show_header=False)
    for key, value in view.to_dict().items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)


@dsar_app.command("create")
def dsar_create(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option(help="tenant slug")],
    kind: Annotated[str, typer.Option("--type", help=" | ".join(dsar.KINDS))],
    phone: Annotated[str | None, typer.Option(help="the person's phone number (E.164)")] = None,
    email: Annotated[str | None, typer.Option(help="the person's e-mail address")] = None,
    channel: Annotated[str, typer.Option(help=" | ".join(dsar.CHANNELS))] = "staff",
) -> None:
    """Record a request; prints its id."""
    if (phone is None) == (email is None):
        raise InvalidInputError("give exactly one of --phone or --email", field="phone")

    async def go(vault: Vault) -> dsar.DsarView:
        return await dsar.do_create_request(vault, tenant, kind, phone=phone, email=email, channel=channel,
                                            actor=actor())

    view = run(with_vault(settings_of(ctx), go))
    console.print(str(view.id), highlight=False)
    console.print(f"due on {view.due_on.isoformat()}; verify the identity next: voicedesk dsar verify {view.id} "
                  "--send | --code CODE | --staff", highlight=False, style="dim")


@dsar_app.command("verify")
def dsar_verify(
    ctx: typer.Context, request_id: RequestId,
    code: Annotated[str | None, typer.Option(help="the 6-digit code the person received by SMS")] = None,
    staff: Annotated[bool, typer.Option("--staff", help="you confirm the person's identity yourself")] = False,
    send: Annotated[bool, typer.Option("--send", help="send a code by SMS to the person's number")] = False,
) -> None:
    """Verify the requester's identity: send a code, check a code, or confirm as staff."""
    if sum((code is not None, staff, send)) != 1:
        raise InvalidInputError("give exactly one of --send, --code CODE or --staff", field="code")
    settings = settings_of(ctx)

    async def go(vault: Vault) -> dsar.DsarView:
        if send:
            return await dsar.do_send_code(vault, request_id, _sms_for(settings), actor=actor())
        if staff:
            return await dsar.do_confirm_by_staff(vault, request_id, actor=actor())
        return await dsar.do_check_code(vault, request_id, code or "", actor=actor())

    view = run(with_vault(settings, go))
    if send:
        console.print("code sent by SMS (valid 10 minutes)")
    else:
        console.print(f"identity verified; request {view.id} is {view.state}", highlight=False)


@dsar_app.command("export")
def dsar_export(
    ctx: typer.Context, request_id: RequestId,
    out: Annotated[Path, typer.Option(help="where to write the ZIP archive (must not exist)")],
    authority_basis: Annotated[str | None, typer.Option(
        help="for an authority's request: its legal basis (recorded in the audit log)")] = None,
) -> None:
    """Write the access/portability archive and complete the request."""
    settings = settings_of(ctx)

    async def go(vault: Vault) -> ExportReport:
        return await do_export(vault, request_id, out, actor=actor(), processors=processors_of(settings),
                               authority_basis=authority_basis)

    report = run(with_vault(settings, go))
    parts = ", ".join(f"{k} {v}" for k, v in report.counts.items() if v)
    console.print(f"wrote {report.path} ({report.size_bytes} bytes: {parts}; {report.audio_files} audio files)",
                  highlight=False)


@dsar_app.command("erase")
def dsar_erase(
    ctx: typer.Context, request_id: RequestId,
    vacuum: Annotated[bool, typer.Option(help="SQLite: also rebuild the database file")] = False,
) -> None:
    """Erase everything of the person and destroy their key (refused while a legal hold applies)."""

    async def go(vault: Vault) -> ErasureReport:
        return await do_erase(vault, request_id, actor=actor(), vacuum=vacuum)

    report = run(with_vault(settings_of(ctx), go))
    rows = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
    console.print(f"erased: {rows}; blobs {report.blobs_deleted}; key destroyed", highlight=False)


@dsar_app.command("restrict")
def dsar_restrict(
    ctx: typer.Context, request_id: RequestId,
    lift: Annotated[bool, typer.Option("--lift", help="lift a restriction granted earlier")] = False,
) -> None:
    """Restrict processing of the person's data (kept, but no lookup, personalisation, integrations)."""

    async def go(vault: Vault) -> dsar.DsarView:
        return await dsar.do_restrict(vault, request_id, actor=actor(), lift=lift)

    run(with_vault(settings_of(ctx), go))
    console.print("restriction lifted" if lift else "processing restricted")


@dsar_app.command("rectify")
def dsar_rectify(
    ctx: typer.Context, request_id: RequestId,
    field: Annotated[list[str], typer.Option(help=" | ".join(CONTACT_FIELDS))],
    value: Annotated[list[str], typer.Option(help="the corrected value ('' clears the field), one per --field")],
) -> None:
    """Correct the person's contact data; repeat --field/--value for several fields."""
    if len(field) != len(value):
        raise InvalidInputError("give one --value for every --field", field="value")

    async def go(vault: Vault) -> dsar.DsarView:
        return await dsar.do_rectify(vault, request_id, dict(zip(field, value, strict=True)), actor=actor())

    run(with_vault(settings_of(ctx), go))
    console.print(f"rectified: {', '.join(sorted(set(field)))}")


@dsar_app.command("object")
def dsar_object(ctx: typer.Context, request_id: RequestId) -> None:
    """Record an objection (Art. 21): processing on legitimate interests stops for this person."""

    async def go(vault: Vault) -> dsar.DsarView:
        return await dsar.do_object(vault, request_id, actor=actor())

    run(with_vault(settings_of(ctx), go))
    console.print("objection recorded")


@dsar_app.command("withdraw")
def dsar_withdraw(
    ctx: typer.Context, request_id: RequestId,
    purpose: Annotated[list[str] | None, typer.Option(help=" | ".join(dsar.WITHDRAWABLE_PURPOSES))] = None,
) -> None:
    """Record a consent withdrawal (all purposes unless --purpose is given), effective for the future."""
    purposes = purpose or list(dsar.WITHDRAWABLE_PURPOSES)

    async def go(vault: Vault) -> dsar.DsarView:
        return await dsar.do_withdraw(vault, request_id, actor=actor(), purposes=purposes)

    run(with_vault(settings_of(ctx), go))
    console.print(f"consent withdrawn: {', '.join(purposes)}")


@dsar_app.command("extend")
def dsar_extend(
    ctx: typer.Context, request_id: RequestId,
    months: Annotated[int, typer.Option(help="1 or 2 (two in total at most)")],
    reason: Annotated[str, typer.Option(help="why more time is needed (told to the person)")],
) -> None:
    """Extend the deadline (Art. 12(3)), before the current due date, with a reason."""

    async def go(vault: Vault) -> dsar.DsarView:
        return await dsar.do_extend(vault, request_id, months, reason, actor=actor())

    view = run(with_vault(settings_of(ctx), go))
    console.print(f"now due on {view.due_on.isoformat()}")


@dsar_app.command("refuse")
def dsar_refuse(
    ctx: typer.Context, request_id: RequestId,
    reason: Annotated[str, typer.Option(help="why the request is refused (told to the person)")],
) -> None:
    """Refuse the request with a reason."""

    async def go(vault: Vault) -> dsar.DsarView:
        return await dsar.do_refuse(vault, request_id, reason, actor=actor())

    run(with_vault(settings_of(ctx), go))
    console.print("request refused")


@dsar_app.command("status")
def dsar_status(
    ctx: typer.Context,
    request_id: Annotated[str | None, typer.Argument(help="one request; all when omitted")] = None,
    tenant: Annotated[str | None, typer.Option(help="only this tenant's requests")] = None,
    open_only: Annotated[bool, typer.Option("--open", help="only requests still open")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON lines")] = False,
) -> None:
    """Show one request in detail, or a list of requests with their due dates."""

    async def go(vault: Vault) -> list[dsar.DsarView]:
        return await dsar.list_requests(vault, actor=actor(), request_id=request_id, tenant_slug=tenant,
                                        open_only=open_only)

    views = run(with_vault(settings_of(ctx), go))
    if as_json:
        for v in views:
            console.print_json(json.dumps(v.to_dict()))
        return
    if request_id is not None:
        _print_view(views[0])
        return
    table = Table("id", "tenant", "kind", "state", "verification", "received", "due", "overdue")
    for v in views:
        table.add_row(str(v.id), v.tenant_slug, v.kind, v.state, v.verification, v.received_at.date().isoformat(),
                      v.due_on.isoformat(), "yes" if v.overdue else "")
    console.print(table)


@dsar_app.command("remind")
def dsar_remind(ctx: typer.Context) -> None:
    """Send the due reminders now (the scheduler does this daily)."""
    settings = settings_of(ctx)

    async def go(vault: Vault) -> dsar.ReminderReport:
        return await dsar.send_dsar_reminders(vault, vault.clock.now(), mailer=_mailer(settings), actor=actor())

    report = run(with_vault(settings, go))
    console.print(f"{report.checked} open requests: {report.emailed} reminders e-mailed, {report.logged} logged, "
                  f"{report.failed} failed, {report.overdue} overdue")


@dsar_app.command("replay-ledger")
def dsar_replay_ledger(ctx: typer.Context) -> None:
    """After restoring a data backup: remove again everyone erased since (also runs at start-up)."""

    async def go(vault: Vault) -> ReplayReport:
        return await replay_erasure_ledger(vault)

    report = run(with_vault(settings_of(ctx), go))
    console.print(f"{report.entries} ledger entries; {len(report.subjects_purged)} people removed again, "
                  f"{report.requests_closed} requests closed, {report.blobs_deleted} blobs deleted")


# --- consent ---------------------------------------------------------------------------------------


@consent_app.command("show")
def consent_show(
    ctx: typer.Context,
    call: Annotated[str, typer.Option("--call", help="voicedesk call id or Twilio CallSid")],
) -> None:
    """The consent records of a call and the announcement text version the caller heard."""

    async def go(vault: Vault) -> CallConsents:
        return await list_call_consents(vault, call, actor=actor())

    result = run(with_vault(settings_of(ctx), go))
    console.print(f"call {result.call_id} ({result.provider_call_id or 'no carrier id'}), language "
                  f"{result.language}", highlight=False)
    table = Table("purpose", "decision", "method", "time", "text version", "sha256", "hash ok", "reason")
    for r in result.records:
        table.add_row(r.purpose, r.decision, r.method, r.decided_at.isoformat(), r.text_version or "",
                      r.text_sha256 or "", {True: "yes", False: "NO", None: "?"}[r.hash_matches], r.reason or "")
    console.print(table)
    if not result.records:
        console.print("no consent records for this call")
    for t in result.heard:
        console.print(f"[bold]{t.kind}[/] {t.language} v{t.version} ({t.created_at.date().isoformat()}, "
                      f"sha256 {t.sha256}):")
        console.print(f"  {t.text}", highlight=False, markup=False)
