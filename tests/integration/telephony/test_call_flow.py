"""Whole calls over the real HTTP webhooks and media WebSocket (tone-keyed speech, real everything else).

The server is the real app on uvicorn; the emulated carrier is ``TwilioEmulator``. Speech is
a tone per phrase (fast and deterministic); the real-speech round trip is in
``test_call_real_speech.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from tests.support.engines import tone_engines
from tests.support.factories import make_tenant
from tests.support.fake_twilio import serve_asgi
from tests.support.fakes_voice import silence, tone
from voicedesk.bootstrap import open_vault
from voicedesk.clock import FixedClock
from voicedesk.config import Settings
from voicedesk.store.models import Appointment, Call, Consent, Recording, Turn
from voicedesk.store.vault import Vault
from voicedesk.telephony.twilio.emulator import EmulatedCall, TwilioEmulator
from voicedesk.web.app import create_app

PUBLIC = "https://vd.example"
TOKEN = "twilio-test-auth-token"
PRAXIS = "+4969123456780"
CALLER = "+4917612345678"
NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)  # Wednesday, 10:00 in Frankfurt

PHRASES = {
    500: "Ich hätte gern einen Termin für eine Sprechstunde morgen um 10 Uhr",
    700: "Ja",
    900: "Mein Name ist Anna Schmidt",
    1100: "Nein danke, tschüss",
    1300: "Bitte nicht aufzeichnen",
}


@dataclass
class Rig:
    settings: Settings
    vault: Vault
    emulator: TwilioEmulator
    clock: FixedClock


@pytest.fixture
async def rig(settings: Settings) -> AsyncIterator[Rig]:
    settings = settings.model_copy(update={"public_url": PUBLIC, "twilio_auth_token": SecretStr(TOKEN)})
    clock = FixedClock(NOW)
    setup = await open_vault(settings, clock=clock)
    await make_tenant(setup)
    await setup.close()
    app = create_app(settings, clock=clock, engines=tone_engines(PHRASES))
    async with app.router.lifespan_context(app), serve_asgi(app) as url:
        vault = app.state.voicedesk.vault
        async with TwilioEmulator(PUBLIC, TOKEN, server_url=url) as emulator:
            yield Rig(settings, vault, emulator, clock)


async def say(call: EmulatedCall, freq: int, ms: int = 600) -> None:
    await call.say(tone(freq, ms))
    await call.say(silence(200))


async def until_answered(call: EmulatedCall, before: int, timeout_s: float = 15.0) -> None:
    """Wait for assistant audio beyond ``before`` bytes, then for it to finish playing."""
    async with asyncio.timeout(timeout_s):
        while len(call.received) <= before and not call.ended.is_set():  # noqa: ASYNC110 - polls the emulator
            await asyncio.sleep(0.02)
    await call.wait_until_quiet(quiet_s=0.3)


async def turn(call: EmulatedCall, freq: int) -> None:
    before = len(call.received)
    await say(call, freq)
    await until_answered(call, before)


async def press(call: EmulatedCall, digit: str) -> None:
    before = len(call.received)
    await call.press(digit)
    await until_answered(call, before)


async def answered(call: EmulatedCall) -> None:
    await until_answered(call, 0)


async def count(vault: Vault, model: type, **where: object) -> int:
    async with vault.db.sessions() as s:
        q = select(func.count()).select_from(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return int(await s.scalar(q) or 0)


@pytest.mark.req("R-3.1")
@pytest.mark.req("R-4.1")
@pytest.mark.req("R-4.2")
@pytest.mark.req("R-3.2")
async def test_german_call_with_key_consent_books_an_appointment(rig: Rig) -> None:
    call = await rig.emulator.place_call(to=PRAXIS, from_=CALLER)
    await answered(call)
    await press(call, "1")  # consent to recording
    for freq in (500, 700, 900, 700):
        await turn(call, freq)
    await say(call, 1100)
    await call.wait_ended(timeout_s=20)

    async with rig.vault.db.sessions() as s:
        row = (await s.scalars(select(Call))).one()
        turns = list((await s.scalars(select(Turn).where(Turn.call_id == row.id).order_by(Turn.seq))).all())
        consents = list((await s.scalars(select(Consent).where(Consent.call_id == row.id))).all())
        appointment = (await s.scalars(select(Appointment))).one()
        recordings = list((await s.scalars(select(Recording).where(Recording.call_id == row.id))).all())
    assert row.status == "completed" and row.answered_at is not None and row.ended_at is not None
    assert row.duration_s is not None
    assert {c.purpose: c.decision for c in consents} == {"recording": "granted", "transcription": "granted"}
    assert all(c.method == "key" and c.text_version and len(c.text_sha256 or "") == 64 for c in consents)
    assert appointment.service_id == "consultation"
    assert appointment.start_at == dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
    speakers = [t.speaker for t in turns]
    assert "caller" in speakers and "assistant" in speakers
    texts = [await rig.vault.keys.decrypt(row.tenant_id, t.text_enc, table="turns", row_id=t.id, column="text")
             for t in turns]
    assert any("Anna Schmidt" in (t or "") for t in texts)
    assert {r.track for r in recordings} == {"caller", "assistant"}
    caller_track = next(r for r in recordings if r.track == "caller")
    key = await rig.vault.keys.blob_key(row.tenant_id, (await _subject_key(rig.vault, row)), caller_track.blob_key)
    audio = b"".join([c async for c in rig.vault.blobs.read(caller_track.blob_key, key)])
    assert abs(len(audio) // 2 - caller_track.duration_ms * 8) < 8  # duration_ms is floored
    assert caller_track.duration_ms > 3000


async def _subject_key(vault: Vault, call: Call) -> uuid.UUID:
    from voicedesk.store.models import Subject

    async with vault.db.sessions() as s:
        subject = await s.get(Subject, call.subject_id)
        assert subject is not None
        return subject.key_id


@pytest.mark.req("R-4.2")
async def test_refused_consent_leaves_no_audio_and_no_transcript(rig: Rig) -> None:
    call = await rig.emulator.place_call(to=PRAXIS, from_=CALLER)
    await answered(call)
    await press(call, "2")  # no recording
    await turn(call, 500)
    await call.hang_up()
    await asyncio.sleep(0.3)
    assert await count(rig.vault, Recording) == 0
    assert await count(rig.vault, Turn) == 0
    async with rig.vault.db.sessions() as s:
        consents = list((await s.scalars(select(Consent))).all())
    assert {c.decision for c in consents} == {"refused"}
    assert all(c.method == "key" for c in consents)
    blobs = list(rig.settings.blob_dir.rglob("*")) if rig.settings.blob_dir.exists() else []
    assert [b for b in blobs if b.is_file()] == []


@pytest.mark.req("R-4.2")
async def test_withdrawal_mid_call_deletes_what_was_recorded(rig: Rig) -> None:
    call = await rig.emulator.place_call(to=PRAXIS, from_=CALLER)
    await answered(call)
    await press(call, "1")
    await turn(call, 500)
    assert await count(rig.vault, Turn) > 0
    await turn(call, 1300)  # "Bitte nicht aufzeichnen"
    await call.hang_up()
    await asyncio.sleep(0.3)
    assert await count(rig.vault, Recording) == 0
    assert await count(rig.vault, Turn) == 0
    blobs = [b for b in rig.settings.blob_dir.rglob("*") if b.is_file()] if rig.settings.blob_dir.exists() else []
    assert blobs == []
    async with rig.vault.db.sessions() as s:
        decisions = [(c.purpose, c.decision) for c in (await s.scalars(select(Consent))).all()]
    assert ("recording", "withdrawn") in decisions


@pytest.mark.req("R-10.3")
async def test_forged_webhook_is_refused_and_nothing_stored(rig: Rig) -> None:
    _sid, response = await rig.emulator.ring(to=PRAXIS, signature="bm90IGEgc2lnbmF0dXJl")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert await count(rig.vault, Call) == 0


@pytest.mark.req("R-10.3")
@pytest.mark.req("R-3.1")
async def test_retried_webhook_gets_the_same_twiml_and_one_record(rig: Rig) -> None:
    sid, first = await rig.emulator.ring(to=PRAXIS)
    _, second = await rig.emulator.ring(to=PRAXIS, call_sid=sid)
    assert first.status_code == second.status_code == 200
    assert first.text == second.text and "<Stream" in first.text
    assert await count(rig.vault, Call) == 1


@pytest.mark.req("R-10.3")
async def test_stream_without_valid_token_or_with_a_used_token_is_refused(rig: Rig) -> None:
    import websockets

    sid, answer = await rig.emulator.ring(to=PRAXIS)
    from voicedesk.telephony.twilio.emulator import parse_twiml

    twiml = parse_twiml(answer.text)
    ws_url = rig.emulator.connect_url(twiml.stream_url or "")

    async def open_stream(token: str) -> int | None:
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            await ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
                "accountSid": "AC1", "streamSid": "MZ1", "callSid": sid, "tracks": ["inbound"],
                "customParameters": {"token": token},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 2)
            except websockets.ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
            except TimeoutError:
                return None

    assert await open_stream("v1.forged.token") == 1008
    token = twiml.parameters["token"]
    first = asyncio.create_task(open_stream(token))
    await asyncio.sleep(1.0)
    assert await open_stream(token) == 1008  # second use of the same token
    first.cancel()
    assert await count(rig.vault, Turn) == 0


@pytest.mark.req("R-3.1")
async def test_missed_call_status_is_recorded(rig: Rig) -> None:
    form = rig.emulator.call_params("CA" + "7" * 32, CALLER, PRAXIS, "no-answer")
    response = await rig.emulator.post(rig.emulator.public("/twilio/status"), form)
    assert response.status_code == 204
    again = await rig.emulator.post(rig.emulator.public("/twilio/status"), form)
    assert again.status_code == 204
    async with rig.vault.db.sessions() as s:
        calls = list((await s.scalars(select(Call))).all())
    assert [c.status for c in calls] == ["no-answer"]


@pytest.mark.req("R-3.4")
async def test_booking_call_sends_an_sms_confirmation(settings: Settings) -> None:
    from tests.support.fake_twilio import FakeTwilio

    async with FakeTwilio.serve(auth_token=TOKEN) as fake:
        settings = settings.model_copy(update={
            "public_url": PUBLIC, "twilio_auth_token": SecretStr(TOKEN), "twilio_account_sid": fake.account_sid,
            "twilio_api_base": fake.base_url, "twilio_sms_from": PRAXIS})
        clock = FixedClock(NOW)
        setup = await open_vault(settings, clock=clock)
        await make_tenant(setup)
        await setup.close()
        app = create_app(settings, clock=clock, engines=tone_engines(PHRASES))
        async with app.router.lifespan_context(app), serve_asgi(app) as url, TwilioEmulator(
            PUBLIC, TOKEN, server_url=url
        ) as emulator:
            call = await emulator.place_call(to=PRAXIS, from_=CALLER)
            await answered(call)
            await press(call, "1")
            for freq in (500, 700, 900, 700):
                await turn(call, freq)
            await say(call, 1100)
            await call.wait_ended(timeout_s=20)
            async with asyncio.timeout(10):
                while not fake.messages:  # noqa: ASYNC110 - the confirmation is sent after the call
                    await asyncio.sleep(0.05)
    [sms] = fake.messages
    assert sms.to == CALLER and sms.from_ == PRAXIS
    assert "26" in sms.body and "10:00" in sms.body and "Hausarztpraxis" in sms.body


@pytest.mark.req("R-10.1")
async def test_end_to_end_mode_records_so_only_the_tenant_can_listen(settings: Settings) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from voicedesk.domain.errors import IntegrityError
    from voicedesk.privacy.e2e import decrypt_recording, do_set_e2e_key, generate_keypair

    settings = settings.model_copy(update={"public_url": PUBLIC, "twilio_auth_token": SecretStr(TOKEN)})
    private_pem, public_pem = generate_keypair()
    clock = FixedClock(NOW)
    setup = await open_vault(settings, clock=clock)
    tenant = await make_tenant(setup)
    await do_set_e2e_key(setup, tenant.id, public_pem, actor="test")
    await setup.close()
    app = create_app(settings, clock=clock, engines=tone_engines(PHRASES))
    async with app.router.lifespan_context(app), serve_asgi(app) as url, TwilioEmulator(
        PUBLIC, TOKEN, server_url=url
    ) as emulator:
        vault: Vault = app.state.voicedesk.vault
        call = await emulator.place_call(to=PRAXIS, from_=CALLER)
        await answered(call)
        await press(call, "1")
        await turn(call, 500)
        await call.hang_up()
        await asyncio.sleep(0.3)
        async with vault.db.sessions() as s:
            row = (await s.scalars(select(Call))).one()
            recordings = list((await s.scalars(select(Recording))).all())
        assert recordings and all(r.e2e for r in recordings)
        server_key = await vault.keys.blob_key(row.tenant_id, await _subject_key(vault, row), recordings[0].blob_key)
        with pytest.raises(IntegrityError):
            _ = [c async for c in vault.blobs.read(recordings[0].blob_key, server_key)]
        private = load_pem_private_key(private_pem, password=None)
        audio = b"".join([c async for c in decrypt_recording(vault.blobs, recordings[0].blob_key, private)])  # type: ignore[arg-type]
        assert abs(len(audio) // 2 - recordings[0].duration_ms * 8) < 8 and len(audio) > 16000
