"""Typer application and the foundation commands (init, serve, migrate, doctor, tenant, audit)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from voicedesk.cli.common import actor, console, fail, run, settings_of, with_vault
from voicedesk.config import Settings, write_key_file, write_local_twilio_token
from voicedesk.domain.errors import ConfigError, ConflictError, VoicedeskError
from voicedesk.store.repos.tenants import tenant_summary
from voicedesk.store.vault import Vault
from voicedesk.tenancy import service as tenancy

app = typer.Typer(name="voicedesk", help="Self-hostable AI phone assistant.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
tenant_app = typer.Typer(help="Businesses served by this installation.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident access log.", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(audit_app, name="audit")


@app.callback()
def _settings(ctx: typer.Context) -> None:
    """Configuration comes from VOICEDESK_* environment variables or a .env file."""
    try:
        ctx.obj = Settings()
    except ValidationError as exc:
        problems = "; ".join(f"VOICEDESK_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
                             for e in exc.errors())
        raise fail(f"invalid configuration: {problems}") from None


def examples_dir() -> Path:
    """The demo profiles: the repository's ``examples/`` or the copy inside the wheel."""
    for candidate in (Path(__file__).resolve().parents[3] / "examples", Path(__file__).resolve().parent.parent
                      / "_examples"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("demo profiles not found (examples/ is missing from this installation)")


@app.command()
def init(ctx: typer.Context, demo: Annotated[bool, typer.Option(help="add the demo businesses")] = False) -> None:
    """Create the data folder, master key and database (idempotent)."""
    settings = settings_of(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.master_key is None and not settings.key_file.exists():
        write_key_file(settings.key_file)
        console.print(f"created master key {settings.key_file} (mode 0600) — back it up apart from the data")
    write_local_twilio_token(settings.data_dir)

    async def go(vault: Vault) -> None:
        await vault.audit.record(actor=actor(), action="system.init")
        if not demo:
            return
        for path in sorted(examples_dir().glob("*.yaml")):
            profile = tenancy.load_profile_file(path)
            try:
                await tenancy.do_create_tenant(vault, profile, actor=actor())
            except ConflictError:
                console.print(f"demo tenant {profile.slug} exists already")
                continue
            email = f"owner@{profile.slug}.example"
            _user, password = await tenancy.do_create_user(vault, profile.slug, email=email, role="owner",
                                                           password=None, actor=actor())
            console.print(f"demo tenant [bold]{profile.slug}[/] ({profile.name}), numbers "
                          f"{', '.join(profile.twilio_numbers)}")
            console.print(f"  owner login: {email}  password: [bold]{password}[/]  (shown only now)")

    run(with_vault(settings, go))
    console.print(f"ready: data in {settings.data_dir.resolve()}")


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Apply database migrations."""

    async def go(vault: Vault) -> None:
        await vault.audit.record(actor=actor(), action="system.migrate")

    run(with_vault(settings_of(ctx), go))
    console.print("database schema is current")


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
) -> None:
    """Run the assistant (webhooks, media streams, jobs)."""
    import uvicorn

    from voicedesk.web.app import create_app, server_options

    settings = settings_of(ctx)
    if "instance_id" not in settings.model_fields_set:
        settings = settings.model_copy(update={"instance_id": f"{settings.instance_id}:{port}"})
    if "public_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"public_url": f"http://{host}:{port}"})

    async def check(vault: Vault) -> None:
        await vault.audit.record(actor=actor(), action="system.serve", details={"port": port})

    run(with_vault(settings, check))
    console.print(f"voicedesk listening on http://{host}:{port}  (public URL {settings.public_url})")
    uvicorn.run(create_app(settings), host=host, port=port, **server_options(settings))


@tenant_app.command("create")
def tenant_create(
    ctx: typer.Context, profile: Annotated[Path, typer.Option(help="tenant profile YAML file")]
) -> None:
    """Create a tenant from a profile file."""
    parsed = tenancy.load_profile_file(profile)

    async def go(vault: Vault) -> None:
        await tenancy.do_create_tenant(vault, parsed, actor=actor())

    run(with_vault(settings_of(ctx), go))
    console.print(f"created tenant {parsed.slug}")


@tenant_app.command("list")
def tenant_list(ctx: typer.Context) -> None:
    """List tenants."""

    async def go(vault: Vault) -> list[dict[str, object]]:
        return [tenant_summary(t) for t in await tenancy.list_tenants(vault, actor=actor())]

    rows = run(with_vault(settings_of(ctx), go))
    table = Table("slug", "name", "language", "numbers", "consent")
    for r in rows:
        table.add_row(str(r["slug"]), str(r["name"]), str(r["language"]),
                      ", ".join(r["numbers"]) if isinstance(r["numbers"], list) else "", str(r["consent_mode"]))
    console.print(table)


@audit_app.command("verify")
def audit_verify(ctx: typer.Context) -> None:
    """Check the audit chain: altered, deleted, swapped or truncated entries."""

    async def go(vault: Vault) -> tuple[bool, int, list[str]]:
        report = await vault.audit.verify()
        return report.ok, report.checked, report.problems

    ok, checked, problems = run(with_vault(settings_of(ctx), go))
    if not ok:
        for p in problems:
            console.print(f"[red]✗[/] {p}")
        raise fail(f"audit log is NOT intact ({len(problems)} problems in {checked} entries)")
    console.print(f"[green]✓[/] audit log intact ({checked} entries)")


def main() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from voicedesk.cli import chat as _chat  # noqa: F401 - registers the command
    from voicedesk.cli import doctor as _doctor  # noqa: F401 - registers the command
    from voicedesk.cli import privacy as _privacy  # noqa: F401 - registers the dsar and consent commands
    from voicedesk.cli import reports as _reports  # noqa: F401 - registers retention, report, e2e, decrypt, training
    from voicedesk.cli import softphone as _softphone  # noqa: F401 - registers the command

    try:
        app()
    except VoicedeskError as exc:
        raise SystemExit(fail(exc.msg).exit_code) from None
