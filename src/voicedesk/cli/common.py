"""Shared plumbing of the CLI commands: settings, the vault, error rendering."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console

from voicedesk.bootstrap import open_vault
from voicedesk.config import Settings
from voicedesk.domain.errors import VoicedeskError
from voicedesk.store.vault import Vault

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def settings_of(ctx: typer.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def fail(msg: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {msg}", highlight=False)
    return typer.Exit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; a ``VoicedeskError`` becomes one message and exit code 1."""
    try:
        return asyncio.run(coro)
    except VoicedeskError as exc:
        raise fail(exc.msg) from None


async def with_vault(settings: Settings, fn: Callable[[Vault], Awaitable[T]], *, migrate: bool = True) -> T:
    vault = await open_vault(settings, run_migrations=migrate)
    try:
        return await fn(vault)
    finally:
        await vault.close()
