"""Cold and warm transfer, and no answer → back to the assistant, against a fake of Twilio's REST API.

The real app on uvicorn talks to ``FakeTwilio`` (a real-protocol fake of the REST API on
127.0.0.1) for call control; the test plays the carrier's part step by step with
``RawStream`` and signed webhooks: it sees the live call updated with ``<Dial>`` TwiML,
ends the media stream as Twilio does when a call's TwiML is replaced, and posts the Dial
``action`` (transfer result), the whisper request and the final status callback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from tests.support.engines import tone_engines
from tests.support.factories import demo_profile, make_tenant
from tests.support.fake_twilio import FakeTwilio, serve_asgi
from tests.support.fakes_voice import tone
from tests.support.raw_stream import RawStream
from voicedesk.bootstrap import open_vault
from voicedesk.clock import FixedClock
from voicedesk.config import Settings
from voicedesk.store.models import Call, Message, Turn
from voicedesk.store.vault import Vault
from voicedesk.telephony.live import LiveCalls
from voicedesk.telephony.twilio.emulator import TwilioEmulator, parse_twiml
from voicedesk.web.app import create_app

PUBLIC = "https://vd.example"
PRAXIS = "+4969123456780"
CALLER = "+4917612345678"
NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
HUMAN, EMERGENCY, REASON, NAME, THIS_NUMBER = 500, 700, 900, 1100, 1300
PHRASES = {
    HUMAN: "Ich möchte bitte mit einem Mitarbeiter sprechen",
    EMERGENCY: "Ich habe starke Brustschmerzen, was soll ich tun",
    REASON: "Es geht um meine Unterlagen",
    NAME: "Mein Name ist Anna Schmidt",
    THIS_NUMBER: "Ja diese Nummer",
}
FORWARDING = demo_profile().forwarding_number


@dataclass
class Rig:
    vault: Vault
    twilio: FakeTwilio
    emulator: TwilioEmulator
    live: LiveCalls


@dataclass
class Placed:
    sid: str
    call_id: uuid.UUID
    stream: RawStream
    token: str


@pytest.fixture
async def rig(settings: Settings) -> AsyncIterator[Rig]:
    async with FakeTwilio.serve() as twilio:
        settings = settings.model_copy(update={
            "public_url": PUBLIC, "twilio_account_sid": twilio.account_sid,
            "twilio_auth_token": SecretStr(twilio.auth_token), "twilio_api_base": twilio.base_url,
        })
        clock = FixedClock(NOW)
        setup = await open_vault(settings, clock=clock)
        await make_tenant(setup)
        await setup.close()
        app = create_app(settings, clock=clock, engines=tone_engines(PHRASES))
        async with (
            app.router.lifespan_context(app),
            serve_asgi(app) as url,
            TwilioEmulator(PUBLIC, twilio.auth_token, server_url=url, account_sid=twilio.account_sid) as emulator,
        ):
            yield Rig(app.state.voicedesk.vault, twilio, emulator, app.state.voicedesk.extras["twilio"].live)


async def place_call(rig: Rig) -> Placed:
    """Ring (Twilio knows the call), open the stream, consent by key 1, let the greeting play."""
    sid = "CA" + secrets.token_hex(16)
    rig.twilio.add_call(sid, from_=CALLER, to=PRAXIS)
    _, answer = await rig.emulator.ring(to=PRAXIS, from_=CALLER, call_sid=sid)
    twiml = parse_twiml(answer.text)
    stream = await RawStream.open(rig.emulator.connect_url(twiml.stream_url or ""), sid, twiml.parameters)
    await stream.wait_for_audio(0)
    before = len(stream.received)
    await stream.press("1")
    await stream.wait_for_audio(before)
    await stream.wait_until_quiet()
    async with rig.vault.db.sessions() as s:
        call = (await s.scalars(select(Call).where(Call.provider_call_id == sid))).one()
    return Placed(sid, call.id, stream, twiml.parameters["token"])


async def ask_for_transfer(rig: Rig, placed: Placed, freq: int) -> ET.Element:
    """Say ``freq``; return the ``<Dial>`` the live call was updated with (after the reply played)."""
    await placed.stream.say(tone(freq, 600))
    fake_call = rig.twilio.calls[placed.sid]
    async with asyncio.timeout(10):
        while not fake_call.twiml:  # noqa: ASYNC110 - polls the fake's record of REST requests
            await asyncio.sleep(0.02)
    stream = placed.stream
    assert stream.marks_received and stream.marks_echoed == stream.marks_received  # the reply had played
    root = ET.fromstring(fake_call.twiml[0])  # noqa: S314 - our own server's TwiML
    dial = root.find("./Dial")
    assert dial is not None, fake_call.twiml[0]
    return dial


async def dial_result(rig: Rig, placed: Placed, status: str) -> httpx.Response:
    """Twilio requests the Dial ``action`` when the dialled leg ends."""
    form = rig.emulator.call_params(placed.sid, CALLER, PRAXIS, "in-progress")
    form.update({"DialCallStatus": status, "DialCallSid": "CA" + secrets.token_hex(16),
                 "DialBridged": "true" if status == "completed" else "false"})
    if status == "completed":
        form["DialCallDuration"] = "42"
    return await rig.emulator.post(rig.emulator.public(f"/twilio/transfer-result?call={placed.call_id}"), form)


async def call_completed(rig: Rig, placed: Placed) -> None:
    """The final status callback."""
    form = rig.emulator.call_params(placed.sid, CALLER, PRAXIS, "completed")
    form["CallDuration"] = "60"
    response = await rig.emulator.post(rig.emulator.public("/twilio/status"), form)
    assert response.status_code == 204


async def call_row(vault: Vault, call_id: uuid.UUID, timeout_s: float = 5.0) -> tuple[Call, str | None]:
    """The call record once the server has finished the call (outcome written)."""
    async with asyncio.timeout(timeout_s):
        while True:
            async with vault.db.sessions() as s:
                call = await s.get(Call, call_id)
            assert call is not None
            if call.outcome is not None:
                break
            await asyncio.sleep(0.05)
    summary = None
    if call.summary_enc is not None:
        summary = await vault.keys.decrypt(call.tenant_id, call.summary_enc, table="calls", row_id=call.id,
                                           column="summary")
    return call, summary


def dial_attributes(dial: ET.Element, call_id: uuid.UUID) -> None:
    assert dial.get("callerId") == PRAXIS
    assert dial.get("timeout") == "20"
    assert dial.get("action") == f"{PUBLIC}/twilio/transfer-result?call={call_id}"
    assert dial.get("method") == "POST"
    numbers = dial.findall("Number")
    assert [n.text for n in numbers] == [FORWARDING]


@pytest.mark.req("R-4.1")
@pytest.mark.req("R-12.2")
async def test_cold_transfer_updates_the_live_call_with_dial_and_ends_when_the_human_hangs_up(rig: Rig) -> None:
    placed = await place_call(rig)
    dial = await ask_for_transfer(rig, placed, HUMAN)
    dial_attributes(dial, placed.call_id)
    number = dial.find("Number")
    assert number is not None and number.get("url") is None  # no whisper on a cold transfer

    await placed.stream.stop()  # Twilio ends <Connect> when the call's TwiML is replaced
    response = await dial_result(rig, placed, "completed")
    assert response.status_code == 200
    assert parse_twiml(response.text).hangup
    await call_completed(rig, placed)

    call, summary = await call_row(rig.vault, placed.call_id)
    assert call.status == "completed" and call.ended_at is not None and call.duration_s == 60
    assert call.outcome == "transfer"
    assert summary is not None and summary != ""
    assert rig.live.calls == {}


@pytest.mark.req("R-4.1")
@pytest.mark.req("R-12.2")
async def test_warm_transfer_whispers_a_one_sentence_summary_to_the_human(rig: Rig) -> None:
    placed = await place_call(rig)
    dial = await ask_for_transfer(rig, placed, EMERGENCY)
    dial_attributes(dial, placed.call_id)
    number = dial.find("Number")
    assert number is not None
    whisper_url = f"{PUBLIC}/twilio/whisper?call={placed.call_id}"
    assert number.get("url") == whisper_url

    await placed.stream.stop()
    # Twilio fetches the whisper TwiML for the answered child leg before bridging.
    child = rig.emulator.call_params("CA" + secrets.token_hex(16), PRAXIS, FORWARDING or "", "in-progress")
    child.update({"Direction": "outbound-dial", "ParentCallSid": placed.sid})
    whisper = await rig.emulator.post(whisper_url, child)
    assert whisper.status_code == 200
    says = parse_twiml(whisper.text).says
    assert len(says) == 1
    summary = says[0]
    assert "Notfall" in summary and PHRASES[EMERGENCY] in summary and CALLER in summary
    assert summary.endswith(".") and summary.count(". ") == 0  # one sentence
    assert 'language="de-DE"' in whisper.text

    response = await dial_result(rig, placed, "completed")
    assert parse_twiml(response.text).hangup
    await call_completed(rig, placed)
    call, _ = await call_row(rig.vault, placed.call_id)
    assert call.status == "completed" and call.outcome == "transfer"
    assert rig.live.calls == {}


@pytest.mark.req("R-4.1")
@pytest.mark.req("R-12.2")
async def test_no_answer_brings_the_caller_back_to_the_assistant_who_takes_a_message(rig: Rig) -> None:
    placed = await place_call(rig)
    await ask_for_transfer(rig, placed, HUMAN)
    await placed.stream.stop()

    response = await dial_result(rig, placed, "no-answer")
    assert response.status_code == 200
    back = parse_twiml(response.text)
    assert back.stream_url == "wss://vd.example/twilio/media"
    token = back.parameters.get("token")
    assert token and token != placed.token  # the first token was used up by the first stream

    # Twilio opens the new stream; it re-attaches to the same session, which offers to take a message.
    stream = await RawStream.open(rig.emulator.connect_url(back.stream_url), placed.sid, back.parameters)
    try:
        await stream.wait_for_audio(0)
        await stream.wait_until_quiet()
        for freq in (REASON, NAME, THIS_NUMBER):
            await stream.reply_to(tone(freq, 600))
        await stream.stop()
        async with rig.vault.db.sessions() as s:
            messages = list((await s.scalars(select(Message).where(Message.call_id == placed.call_id))).all())
            turns = list((await s.scalars(select(Turn).where(Turn.call_id == placed.call_id)
                                          .order_by(Turn.seq))).all())
    finally:
        await stream.abort()
    await call_completed(rig, placed)

    assert len(messages) == 1
    message = messages[0]
    keys = rig.vault.keys

    async def field(column: str, cipher: bytes | None) -> str | None:
        return await keys.decrypt(message.tenant_id, cipher, table="messages", row_id=message.id, column=column)

    assert await field("name", message.name_enc) == "Anna Schmidt"
    assert await field("phone", message.phone_enc) == CALLER
    assert await field("reason", message.reason_enc) == PHRASES[REASON]
    # One transcript across both streams: the second stream's clock restarts at 0, the call's does not.
    assert all(t.start_ms <= t.end_ms for t in turns)
    caller_starts = [t.start_ms for t in turns if t.speaker == "caller"]
    assert len(caller_starts) == 4 and caller_starts == sorted(caller_starts)
    call, _ = await call_row(rig.vault, placed.call_id)
    assert call.status == "completed" and call.outcome == "message"
    assert rig.live.calls == {}
