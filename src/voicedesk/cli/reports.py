"""Retention, reports, processors, end-to-end recordings and training-data commands.

``voicedesk retention run|holds|hold-add|hold-release``, ``voicedesk report
art30|dpia|processors|models``, ``voicedesk e2e keygen|set-key|clear-key``, ``voicedesk
decrypt`` and ``voicedesk training export``. Each command parses, calls one service and
renders; the services audit.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from voicedesk.cli.app import app
from voicedesk.cli.common import actor, console, fail, run, settings_of, with_vault
from voicedesk.config import Settings
from voicedesk.domain.errors import InvalidInputError, NotFoundError
from voicedesk.privacy import e2e, holds, registry, reports, retention, training
from voicedesk.store.models import Recording, Tenant
from voicedesk.store.repos.tenants import profile_of, require_tenant_by_slug
from voicedesk.store.vault import Vault

retention_app = typer.Typer(help="Retention periods: the deletion sweep and legal holds.", no_args_is_help=True)
report_app = typer.Typer(help="Privacy documents: Art. 30 record, DPIA input, processors, AI models.",
                         no_args_is_help=True)
e2e_app = typer.Typer(help="End-to-end encryption of recordings to a tenant-held key.", no_args_is_help=True)
training_app = typer.Typer(help="Fine-tuning data (only with recorded consent).", no_args_is_help=True)
app.add_typer(retention_app, name="retention")
app.add_typer(report_app, name="report")
app.add_typer(e2e_app, name="e2e")
app.add_typer(training_app, name="training")

TenantOpt = Annotated[str, typer.Option("--tenant", help="tenant slug")]


def _declarations() -> dict[str, dict[str, object]]:
    """What the configured adapters declare about the data they send out (composition root)."""
    from voicedesk.telephony.twilio.rest import PROCESSOR as TWILIO

    return {"twilio": dict(TWILIO)}


async def _tenant(vault: Vault, slug: str) -> Tenant:
    async with vault.db.sessions() as s:
        return await require_tenant_by_slug(s, slug)


def _uuid(raw: str, name: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInputError(f"{name} must be an id (UUID)", field=name) from None


# --- retention -------------------------------------------------------------------------------

@retention_app.command("run")
def retention_run(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="report what would go; change nothing")] = False,
    tenant: Annotated[str | None, typer.Option("--tenant", help="only this tenant (slug)")] = None,
    batch_size: Annotated[int, typer.Option(help="records per batch")] = 1000,
) -> None:
    """Delete or anonymise what has outlived its retention period (resumes an interrupted run)."""

    async def go(vault: Vault) -> retention.SweepReport:
        tenant_id = (await _tenant(vault, tenant)).id if tenant else None
        return await retention.run_sweep(vault, tenant_id=tenant_id, dry_run=dry_run, batch_size=batch_size,
                                         actor=actor())

    report = run(with_vault(settings_of(ctx), go))
    table = Table("tenant", "category", "action", "records")
    for t in report.tenants:
        for category, actions in sorted(t.counts.items()):
            for action, n in sorted(actions.items()):
                table.add_row(t.slug, category, action, str(n))
    for action, n in report.logs.items():
        table.add_row("(all)", "logs", action, str(n))
    console.print(table)
    verb = "would be deleted or anonymised" if dry_run else "deleted or anonymised"
    console.print(f"{report.records} records {verb}" + (" (dry run: nothing changed)" if dry_run else ""))


@retention_app.command("holds")
def retention_holds(ctx: typer.Context, tenant: TenantOpt) -> None:
    """List the tenant's active legal holds."""

    async def go(vault: Vault) -> list[tuple[str, str, str, str]]:
        t = await _tenant(vault, tenant)
        rows = await holds.list_legal_holds(vault, t.id)
        return [(str(h.id), "subject" if h.subject_id else "call", str(h.subject_id or h.call_id),
                 h.created_at.date().isoformat()) for h in rows]

    table = Table("hold", "scope", "id", "since")
    for row in run(with_vault(settings_of(ctx), go)):
        table.add_row(*row)
    console.print(table)


@retention_app.command("hold-add")
def retention_hold_add(
    ctx: typer.Context, tenant: TenantOpt,
    reason: Annotated[str, typer.Option(help="legal basis for keeping, e.g. '§ 147 AO'")],
    subject: Annotated[str | None, typer.Option(help="subject id")] = None,
    call: Annotated[str | None, typer.Option(help="call id")] = None,
) -> None:
    """Put a subject or a call on legal hold (blocks deletion)."""

    async def go(vault: Vault) -> uuid.UUID:
        t = await _tenant(vault, tenant)
        hold = await holds.do_add_legal_hold(
            vault, t.id, reason=reason, actor=actor(), subject_id=_uuid(subject, "subject") if subject else None,
            call_id=_uuid(call, "call") if call else None)
        return hold.id

    console.print(str(run(with_vault(settings_of(ctx), go))))


@retention_app.command("hold-release")
def retention_hold_release(ctx: typer.Context, tenant: TenantOpt, hold_id: str) -> None:
    """Release a legal hold."""

    async def go(vault: Vault) -> None:
        t = await _tenant(vault, tenant)
        await holds.do_release_legal_hold(vault, t.id, _uuid(hold_id, "hold"), actor=actor())

    run(with_vault(settings_of(ctx), go))
    console.print(f"released {hold_id}")


# --- reports -----------------------------------------------------------------------------------

def _write(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


def _document(ctx: typer.Context, kind: Literal["art30", "dpia"], tenant: str, fmt: str, out: Path | None) -> None:
    if fmt not in ("md", "html"):
        raise fail("--format must be md or html")
    settings = settings_of(ctx)

    async def go(vault: Vault) -> str:
        t = await _tenant(vault, tenant)
        build = reports.art30_record if kind == "art30" else reports.dpia_input
        doc = await build(vault, settings, t.id, declarations=_declarations())
        await vault.audit.record(actor=actor(), action=f"report.{kind}", tenant_id=t.id, details={"format": fmt})
        return reports.render(doc, "html" if fmt == "html" else "md")

    _write(run(with_vault(settings, go)), out)


FormatOpt = Annotated[str, typer.Option("--format", help="md or html")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="write to this file instead of stdout")]


@report_app.command("art30")
def report_art30(ctx: typer.Context, tenant: TenantOpt, fmt: FormatOpt = "md", out: OutOpt = None) -> None:
    """Record of processing activities (Art. 30 GDPR), from the running configuration."""
    _document(ctx, "art30", tenant, fmt, out)


@report_app.command("dpia")
def report_dpia(ctx: typer.Context, tenant: TenantOpt, fmt: FormatOpt = "md", out: OutOpt = None) -> None:
    """DPIA input (Art. 35 GDPR): data map, risks, measures in force."""
    _document(ctx, "dpia", tenant, fmt, out)


@report_app.command("processors")
def report_processors(ctx: typer.Context) -> None:
    """The processors this configuration sends personal data to, and whether it is EU-only."""
    settings: Settings = settings_of(ctx)
    procs = registry.build_registry(settings, declarations=_declarations())
    table = Table("processor", "purpose", "location", "safeguard", "data", "contract")
    for p in procs:
        table.add_row(p.name, p.purpose, p.location, p.transfer_safeguard, ", ".join(p.data_categories),
                      p.contract_status)
    console.print(table if procs else "no processors: everything runs on this server")
    ok, reasons = registry.eu_only_status(settings, procs)
    console.print(("[green]EU-only[/]" if ok else "[yellow]not EU-only[/]") + ":")
    for r in reasons:
        console.print(f"  - {r}", highlight=False)


@report_app.command("models")
def report_models(ctx: typer.Context, tenant: TenantOpt) -> None:
    """The AI models in use for a tenant (none is trained on its conversations)."""
    settings = settings_of(ctx)

    async def go(vault: Vault) -> list[registry.AiModel]:
        return registry.ai_models(settings, profile_of(await _tenant(vault, tenant)))

    table = Table("purpose", "engine", "model", "language", "runs", "trained on calls")
    for m in run(with_vault(settings, go)):
        table.add_row(m.purpose, m.engine, m.model, m.language or "all", m.runs,
                      "yes" if m.trained_on_conversations else "no")
    console.print(table)


# --- end-to-end recordings ----------------------------------------------------------------------

@e2e_app.command("keygen")
def e2e_keygen(
    private_key: Annotated[Path, typer.Option("--private-key", help="file for the new private key (PEM, 0600)")],
    public_key: Annotated[Path, typer.Option("--public-key", help="file for the public key (PEM)")],
) -> None:
    """Make an X25519 key pair — run it where the private key will stay, not on the server."""
    priv, pub = e2e.generate_keypair()
    private_key.touch(mode=0o600, exist_ok=False)
    private_key.write_bytes(priv)
    public_key.write_bytes(pub)
    console.print(f"fingerprint {e2e.key_fingerprint(e2e.load_public_key(pub))}")


@e2e_app.command("set-key")
def e2e_set_key(
    ctx: typer.Context, tenant: TenantOpt,
    public_key: Annotated[Path, typer.Option("--public-key", help="the tenant's X25519 public key (PEM/base64)")],
) -> None:
    """Switch on end-to-end mode: new recordings are encrypted to this key only."""
    data = public_key.read_bytes()

    async def go(vault: Vault) -> str | None:
        return await e2e.do_set_e2e_key(vault, (await _tenant(vault, tenant)).id, data, actor=actor())

    console.print(f"end-to-end recordings on for {tenant}, key fingerprint {run(with_vault(settings_of(ctx), go))}")


@e2e_app.command("clear-key")
def e2e_clear_key(ctx: typer.Context, tenant: TenantOpt) -> None:
    """Switch end-to-end mode off for new recordings."""

    async def go(vault: Vault) -> None:
        await e2e.do_set_e2e_key(vault, (await _tenant(vault, tenant)).id, None, actor=actor())

    run(with_vault(settings_of(ctx), go))
    console.print(f"end-to-end recordings off for {tenant}")


@app.command("decrypt")
def decrypt(
    ctx: typer.Context,
    recording: Annotated[str, typer.Argument(help="recording id, or the path of a copied blob file")],
    private_key: Annotated[Path, typer.Option("--private-key", help="the tenant's X25519 private key")],
    out: Annotated[Path, typer.Option("--out", help="WAV file to write")],
    sample_rate: Annotated[int, typer.Option(help="for a blob file: its sample rate")] = 8000,
) -> None:
    """Decrypt an end-to-end encrypted recording with the tenant's private key into a WAV file."""
    key = e2e.load_private_key(private_key.read_bytes())
    path = Path(recording)
    if path.is_file():
        pcm = run(_collect(e2e.read_recording_file(path, key)))
        rate = sample_rate
    else:
        rec_id = _uuid(recording, "recording")

        async def go(vault: Vault) -> tuple[bytes, int]:
            async with vault.db.sessions() as s:
                rec = await s.get(Recording, rec_id)
            if rec is None:
                raise NotFoundError("recording not found")
            if not rec.e2e:
                raise InvalidInputError("this recording is not end-to-end encrypted", field="recording")
            data = await _collect(e2e.decrypt_recording(vault.blobs, rec.blob_key, key))
            await vault.audit.record(actor=actor(), action="recording.decrypt_e2e", tenant_id=rec.tenant_id,
                                     object_type="recording", object_id=rec.id)
            return data, rec.sample_rate

        pcm, rate = run(with_vault(settings_of(ctx), go))
    frames = e2e.write_wav(out, pcm, sample_rate=rate)
    console.print(f"wrote {out} ({frames / rate:.2f} s)")


async def _collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


# --- training data --------------------------------------------------------------------------------

@training_app.command("export")
def training_export(
    ctx: typer.Context, tenant: TenantOpt,
    out: Annotated[Path, typer.Option("--out", help="JSON lines file to write")],
    redact: Annotated[bool, typer.Option("--redact/--no-redact", help="PII-redact the text (default)")] = True,
) -> None:
    """Export transcripts for fine-tuning — only calls with recorded fine-tuning consent."""

    async def go(vault: Vault) -> training.TrainingExport:
        return await training.do_export_training_data(vault, (await _tenant(vault, tenant)).id, out,
                                                      actor=actor(), redact=redact)

    result = run(with_vault(settings_of(ctx), go))
    console.print(f"wrote {result.calls} calls ({result.turns} turns) with fine-tuning consent to {out}")
