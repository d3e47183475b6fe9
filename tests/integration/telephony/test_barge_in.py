"""Barge-in over the real WebSocket: what the caller heard is what the transcript keeps.

The real app on uvicorn, the emulated carrier (``TwilioEmulator``: plays queued audio at
8 bytes/ms, echoes marks once played, flushes and echoes them on ``clear``), tone-keyed
speech. The assistant's speech is made slow (40 ms per character) so that the two sentences
of the address answer last seconds; the greeting is shortened to keep the tests quick.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from tests.support.engines import tone_engines
from tests.support.factories import make_tenant
from tests.support.fake_twilio import serve_asgi
from tests.support.fakes_voice import silence, tone
from voicedesk.bootstrap import open_vault
from voicedesk.clock import FixedClock
from voicedesk.config import Settings
from voicedesk.store.models import Turn
from voicedesk.store.vault import Vault
from voicedesk.telephony.twilio.emulator import EmulatedCall, TwilioEmulator
from voicedesk.voice.sentences import split_sentences
from voicedesk.web.app import create_app

PUBLIC = "https://vd.example"
TOKEN = "twilio-test-auth-token"
PRAXIS = "+4969123456780"
CALLER = "+4917612345678"
NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
MS_PER_CHAR = 40

WHERE = 500
STOP = 700
MHM = 900
PHRASES = {
    WHERE: "Wo finde ich Sie?",
    STOP: "Danke, das reicht mir schon",
    MHM: "mhm",
}


@dataclass
class Rig:
    vault: Vault
    emulator: TwilioEmulator


@dataclass(frozen=True)
class StoredTurn:
    speaker: str
    text: str
    interrupted: bool
    intended: str | None


@pytest.fixture
async def rig(settings: Settings) -> AsyncIterator[Rig]:
    settings = settings.model_copy(update={"public_url": PUBLIC, "twilio_auth_token": SecretStr(TOKEN)})
    clock = FixedClock(NOW)
    setup = await open_vault(settings, clock=clock)
    await make_tenant(setup, greeting={"de": "Praxis Müller, hallo.", "en": "Müller's, hello."})
    await setup.close()
    app = create_app(settings, clock=clock, engines=tone_engines(PHRASES, ms_per_char=MS_PER_CHAR))
    async with (
        app.router.lifespan_context(app),
        serve_asgi(app) as url,
        TwilioEmulator(PUBLIC, TOKEN, server_url=url) as emulator,
    ):
        yield Rig(app.state.voicedesk.vault, emulator)


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # noqa: ASYNC110 - polls the emulator's state
            await asyncio.sleep(0.02)


async def start_conversation(call: EmulatedCall) -> None:
    """Consent by key 1 as soon as the announcement starts, then let the greeting play out."""
    await wait_for(lambda: len(call.received) > 0)
    before = len(call.received)
    await call.press("1")
    await wait_for(lambda: call.clears > 0)  # the key cut the announcement short
    await wait_for(lambda: len(call.received) > before)  # the greeting
    await call.wait_until_quiet(quiet_s=0.3, timeout_s=15)


async def ask_the_address(call: EmulatedCall) -> int:
    """Ask; return once the reply's first sentence has played (its mark came back)."""
    marks_before = len(call.marks_received)
    await call.say(tone(WHERE, 600))
    await call.say(silence(100))
    await wait_for(lambda: len(call.marks_received) > marks_before)
    first_mark = call.marks_received[marks_before]
    await call.wait_for_mark(first_mark, timeout_s=15)
    return marks_before


async def stored_turns(vault: Vault) -> list[StoredTurn]:
    async with vault.db.sessions() as s:
        rows = list((await s.scalars(select(Turn).order_by(Turn.seq))).all())
    out = []
    for row in rows:
        text = await vault.keys.decrypt(row.tenant_id, row.text_enc, table="turns", row_id=row.id, column="text")
        intended = None
        if row.tool_calls_enc is not None:
            meta = await vault.keys.decrypt(row.tenant_id, row.tool_calls_enc, table="turns", row_id=row.id,
                                            column="tool_calls")
            intended = json.loads(meta or "{}").get("intended_text")
        out.append(StoredTurn(row.speaker, text or "", row.interrupted, intended))
    return out


async def persisted(vault: Vault, speaker: str, contains: str, timeout_s: float = 5.0) -> StoredTurn:
    """The first turn of ``speaker`` whose (intended) text contains ``contains``, once it is stored."""
    async with asyncio.timeout(timeout_s):
        while True:
            turns = await stored_turns(vault)
            found = [t for t in turns if t.speaker == speaker and contains in (t.intended or t.text)]
            if found:
                return found[0]
            await asyncio.sleep(0.05)


async def faq_turn(vault: Vault) -> StoredTurn:
    """The assistant's answer to the address question."""
    return await persisted(vault, "assistant", "Frankfurt am Main")


@pytest.mark.req("R-3.2")
async def test_speaking_over_a_reply_clears_playback_and_keeps_only_what_was_heard(rig: Rig) -> None:
    call = await rig.emulator.place_call(to=PRAXIS, from_=CALLER)
    try:
        await start_conversation(call)
        clears_before = call.clears
        await ask_the_address(call)
        played_before_barge_in = len(call.played)
        await call.say(tone(STOP, 600))  # well over barge_in_ms (300 ms)
        await wait_for(lambda: call.clears > clears_before)
        answer = await faq_turn(rig.vault)
        await persisted(rig.vault, "caller", PHRASES[STOP])  # the interruption itself is a caller turn
    finally:
        await call.hang_up()

    assert answer.interrupted
    assert answer.intended is not None
    full = split_sentences(answer.intended)
    assert len(full) >= 2
    # The first sentence's mark came back before the caller spoke: it was heard in full;
    # of the sentence that was playing only a proportional share of the words is kept.
    assert answer.text.startswith(full[0])
    assert len(answer.text) < len(answer.intended)
    assert full[-1] not in answer.text
    heard_ms = len(answer.text) * MS_PER_CHAR
    played_ms = played_before_barge_in // 8
    assert heard_ms <= played_ms + 1500  # about what had played when the caller cut in (+ 300 ms to react)


@pytest.mark.req("R-3.2")
async def test_a_short_backchannel_during_a_reply_does_not_interrupt_it(rig: Rig) -> None:
    call = await rig.emulator.place_call(to=PRAXIS, from_=CALLER)
    try:
        await start_conversation(call)
        clears_before = call.clears
        await ask_the_address(call)
        await call.say(tone(MHM, 200))  # "mhm": voiced for less than barge_in_ms
        await call.say(silence(100))
        await call.wait_until_quiet(quiet_s=0.5, timeout_s=20)
        answer = await faq_turn(rig.vault)
        clears_after = call.clears
    finally:
        await call.hang_up()

    assert clears_after == clears_before
    assert not answer.interrupted
    assert answer.intended is None  # kept apart only when what was heard differs from what was meant
    assert "Frankfurt am Main" in answer.text and answer.text.endswith("Kann ich sonst noch etwas für Sie tun?")
    turns = await stored_turns(rig.vault)
    assert not any(t.speaker == "caller" and t.text == PHRASES[MHM] for t in turns)
