"""``voicedesk chat``: talk to the assistant as text, interactively or as JSON lines.

With ``--jsonl`` each stdin line is one caller utterance (an empty line is silence) and
each stdout line one JSON object in ``dialogue.engine.reply_to_json``'s shape; the first
line is the greeting, written before any input is read. Bookings are real: the
conversation uses ``StoreDialogueTools`` on the data dir's database, as a phone call does.
``--now`` sets the conversation's "now" (and the store's clock, so lead times and
"upcoming" agree); without an offset it is the tenant's local time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.markup import escape

from voicedesk.appointments.service import StoreDialogueTools, recognise_caller
from voicedesk.cli.app import app
from voicedesk.cli.common import console, fail, run, settings_of
from voicedesk.clock import Clock, FixedClock, SystemClock
from voicedesk.config import Settings
from voicedesk.dialogue.engine import CallerContext, Conversation, DialogueEngine, Reply, reply_to_json
from voicedesk.domain.errors import InvalidInputError, NotFoundError
from voicedesk.domain.profile import Language, TenantProfile, normalize_e164
from voicedesk.store.repos import tenants as tenant_repo
from voicedesk.store.vault import Vault

CHAT_ACTOR = "chat"


def parse_now(text: str, tz: dt.tzinfo) -> dt.datetime:
    """An ISO-8601 ``--now``; without an offset it is local time in ``tz``."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"--now {text!r} is not an ISO-8601 date-time", field="now") from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


@dataclass
class ChatSession:
    """One text conversation with the assistant over the store."""

    conversation: Conversation
    tools: StoreDialogueTools
    profile: TenantProfile
    ctx: CallerContext

    async def greet(self) -> dict[str, Any]:
        return reply_to_json(await self.conversation.greet())

    async def respond(self, line: str) -> dict[str, Any]:
        return reply_to_json(await self.conversation.respond(line))


async def open_chat(
    vault: Vault, *, slug: str, engine: DialogueEngine, now: dt.datetime, language: Language | None = None,
    caller: str | None = None,
) -> ChatSession:
    """Start a conversation for tenant ``slug`` with the database-backed tools.

    ``now`` must be aware; the caller is recognised by number unless restricted (R-8.4).
    """
    async with vault.db.transaction() as session:
        tenant = await tenant_repo.require_tenant_by_slug(session, slug)
        profile = tenant_repo.profile_of(tenant)
    lang: Language = language or profile.language
    number = None
    if caller:
        try:
            number = normalize_e164(caller)
        except ValueError:
            raise InvalidInputError("--caller is not a phone number", field="caller") from None
    known = await recognise_caller(vault, tenant.id, number, actor=CHAT_ACTOR)
    tools = StoreDialogueTools(vault, tenant.id, caller_phone=number, actor=CHAT_ACTOR)
    ctx = CallerContext(profile=profile, language=lang, now=now.astimezone(profile.tz), caller_number=number,
                        known_name=known, channel="text")
    return ChatSession(engine.open(ctx, tools), tools, profile, ctx)


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


async def run_jsonl(session: ChatSession, readline: Callable[[], str], write: Callable[[str], None]) -> None:
    """Greeting first, then exactly one JSON line per input line until EOF."""
    write(_dump(await session.greet()))
    while True:
        line = await asyncio.to_thread(readline)
        if line == "":
            return
        write(_dump(await session.respond(line.rstrip("\r\n"))))


def _print_reply(reply: Reply | dict[str, Any]) -> None:
    data = reply if isinstance(reply, dict) else reply_to_json(reply)
    console.print(f"[bold cyan]assistant:[/] {escape(str(data['reply']))}", highlight=False)
    for action in data["actions"]:
        details = ", ".join(f"{k}={v}" for k, v in action.items() if k != "type")
        console.print(f"  [dim]→ {escape(str(action['type']))} {escape(details)}[/]", highlight=False)


async def run_interactive(session: ChatSession) -> None:
    you = "Sie" if session.ctx.language == "de" else "You"
    console.print(f"[dim]{escape(session.profile.name)} — {session.ctx.now.isoformat()} — "
                  "empty line = silence, Ctrl-D to hang up[/]")
    _print_reply(await session.greet())
    while True:
        try:
            line = await asyncio.to_thread(console.input, f"[bold green]{you}:[/] ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        reply = await session.respond(line)
        _print_reply(reply)
        if any(a["type"] == "end_call" for a in reply["actions"]):
            return


def _write_line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def _chat(settings: Settings, *, slug: str, language: Language | None, now_text: str | None,
                caller: str | None, jsonl: bool) -> None:
    from voicedesk.bootstrap import open_vault
    from voicedesk.engines import build_dialogue

    clock: Clock = SystemClock()
    fixed: FixedClock | None = None
    if now_text is not None:
        fixed = FixedClock(dt.datetime.now(dt.UTC))
        clock = fixed
    vault = await open_vault(settings, clock=clock)
    try:
        if fixed is not None and now_text is not None:
            async with vault.db.transaction() as s:
                tenant = await tenant_repo.get_tenant_by_slug(s, slug)
                if tenant is None:
                    raise NotFoundError(f"no tenant with slug {slug!r}")
                tz = tenant_repo.profile_of(tenant).tz
            fixed.at = parse_now(now_text, tz).astimezone(dt.UTC)
        session = await open_chat(vault, slug=slug, engine=build_dialogue(settings), now=clock.now(),
                                  language=language, caller=caller)
        if jsonl:
            await run_jsonl(session, sys.stdin.readline, _write_line)
        else:
            await run_interactive(session)
    finally:
        await vault.close()


@app.command()
def chat(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option(help="tenant slug")],
    lang: Annotated[str | None, typer.Option(help="de or en (default: the tenant's language)")] = None,
    now: Annotated[str | None, typer.Option(help="ISO-8601 'now'; without offset: tenant-local")] = None,
    caller: Annotated[str | None, typer.Option(help="the caller's number (E.164)")] = None,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="one utterance per stdin line, JSON per stdout line")] = False,
) -> None:
    """Talk to the assistant as text; bookings land in the database."""
    if lang is not None and lang not in ("de", "en"):
        raise fail("--lang must be de or en")
    language: Language | None = "de" if lang == "de" else "en" if lang == "en" else None
    run(_chat(settings_of(ctx), slug=tenant, language=language, now_text=now, caller=caller, jsonl=jsonl))
