"""1,000 malformed or out-of-order media-stream messages inside a live call (R-10.3).

The real app on uvicorn; the call is driven over one WebSocket by ``RawStream``, which
sends valid 20 ms audio on schedule and lets the test slip garbage in between frames.
The call must survive, every dropped message must be counted under its reason (the
serializer's counters reach ``voicedesk_media_messages_dropped_total`` when the stream
ends), and the conversation must go on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from tests.support.engines import tone_engines
from tests.support.factories import make_tenant
from tests.support.fake_twilio import serve_asgi
from tests.support.fakes_voice import tone
from tests.support.raw_stream import RawStream
from voicedesk.bootstrap import open_vault
from voicedesk.clock import FixedClock
from voicedesk.config import Settings
from voicedesk.store.models import Call, Turn
from voicedesk.store.vault import Vault
from voicedesk.telephony.twilio.emulator import TwilioEmulator, parse_twiml
from voicedesk.web.app import create_app

PUBLIC = "https://vd.example"
TOKEN = "twilio-test-auth-token"
PRAXIS = "+4969123456780"
CALLER = "+4917612345678"
NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
WHERE, HOURS, PRICES = 500, 700, 900
PHRASES = {
    WHERE: "Wo finde ich Sie?",
    HOURS: "Wann haben Sie geöffnet?",
    PRICES: "Was kostet eine Sprechstunde?",
}
GARBAGE = 1000
PER_TICK = 20  # 50 ticks of 20 ms: one second of garbage around the caller's speech
PAYLOAD = "/" * 216  # 160 valid μ-law bytes (0xff, silence) in base64


@dataclass
class Rig:
    vault: Vault
    emulator: TwilioEmulator
    url: str


@pytest.fixture
async def rig(settings: Settings) -> AsyncIterator[Rig]:
    settings = settings.model_copy(update={"public_url": PUBLIC, "twilio_auth_token": SecretStr(TOKEN)})
    clock = FixedClock(NOW)
    setup = await open_vault(settings, clock=clock)
    await make_tenant(setup)
    await setup.close()
    app = create_app(settings, clock=clock, engines=tone_engines(PHRASES))
    async with (
        app.router.lifespan_context(app),
        serve_asgi(app) as url,
        TwilioEmulator(PUBLIC, TOKEN, server_url=url) as emulator,
    ):
        yield Rig(app.state.voicedesk.vault, emulator, url)


def _media(stream: RawStream, *, seq: object, timestamp: object, payload: object = PAYLOAD,
           sid: str | None = None, track: str = "inbound") -> str:
    media: dict[str, object] = {"track": track, "chunk": "1", "timestamp": timestamp}
    if payload is not None:
        media["payload"] = payload
    return json.dumps({"event": "media", "sequenceNumber": seq, "streamSid": sid or stream.stream_sid,
                       "media": media})


# Each kind: (the reason it must be counted under, a builder from the stream's current state).
# None of them may be accepted: a garbage message that got through could move the sequence
# high-water mark and mute the real audio, or press a key.
KINDS: list[tuple[str, Callable[[RawStream], str | bytes]]] = [
    ("bad_json", lambda s: "{not json"),
    ("bad_json", lambda s: ""),
    ("bad_json", lambda s: "[1, 2, 3]"),
    ("bad_json", lambda s: "null"),
    ("bad_json", lambda s: b"\xff\xfe\x00binary"),
    ("bad_json", lambda s: "[" * 100_000),
    ("unknown_event", lambda s: json.dumps({"event": "hello", "streamSid": s.stream_sid})),
    ("unknown_event", lambda s: json.dumps({"sequenceNumber": str(s.seq + 1), "media": {"payload": PAYLOAD}})),
    ("unknown_event", lambda s: b'{"event": "media_v2"}'),
    ("missing_field", lambda s: _media(s, seq=str(s.seq + 1), timestamp=str(s.timestamp_ms), payload=None)),
    ("missing_field", lambda s: json.dumps({"event": "media", "sequenceNumber": str(s.seq + 1),
                                           "streamSid": s.stream_sid})),
    ("missing_field", lambda s: json.dumps({"event": "mark", "sequenceNumber": str(s.seq + 1),
                                           "streamSid": s.stream_sid, "mark": {}})),
    ("bad_base64", lambda s: _media(s, seq=str(s.seq + 1), timestamp=str(s.timestamp_ms), payload="!!not base64!!")),
    ("bad_base64", lambda s: _media(s, seq=str(s.seq + 1), timestamp=str(s.timestamp_ms), payload="//ü=")),
    ("empty_payload", lambda s: _media(s, seq=str(s.seq + 1), timestamp=str(s.timestamp_ms), payload="")),
    ("out_of_order", lambda s: _media(s, seq=str(max(1, s.seq - 5)), timestamp=str(s.timestamp_ms))),
    ("out_of_order", lambda s: _media(s, seq=str(s.seq), timestamp=str(s.timestamp_ms))),
    ("out_of_order", lambda s: _media(s, seq=str(s.seq + 1), timestamp="0")),
    ("out_of_order", lambda s: json.dumps({"event": "dtmf", "sequenceNumber": str(max(1, s.seq - 1)),
                                          "streamSid": s.stream_sid, "dtmf": {"digit": "5"}})),
    ("out_of_order", lambda s: json.dumps({"event": "mark", "sequenceNumber": "2", "streamSid": s.stream_sid,
                                          "mark": {"name": "u1-s1"}})),
    ("sequence_jump", lambda s: _media(s, seq=str(s.seq + 100_000), timestamp=str(s.timestamp_ms))),
    ("bad_field", lambda s: _media(s, seq="seven", timestamp=str(s.timestamp_ms))),
    ("bad_field", lambda s: _media(s, seq=str(s.seq + 1), timestamp="-20")),
    ("bad_field", lambda s: json.dumps({"event": "dtmf", "sequenceNumber": str(s.seq + 1),
                                       "streamSid": s.stream_sid, "dtmf": {"digit": "x"}})),
    ("wrong_stream", lambda s: _media(s, seq=str(s.seq + 1), timestamp=str(s.timestamp_ms), sid="MZ" + "f" * 32)),
    ("wrong_track", lambda s: _media(s, seq=str(s.seq + 1), timestamp=str(s.timestamp_ms), track="outbound")),
    ("duplicate_start", lambda s: json.dumps({"event": "start", "sequenceNumber": str(s.seq + 1),
                                             "streamSid": s.stream_sid, "start": {
                                                 "streamSid": s.stream_sid, "callSid": s.call_sid,
                                                 "customParameters": {"token": "again"}}})),
]


async def inject_garbage(stream: RawStream, total: int) -> Counter[str]:
    """``total`` bad messages, ``PER_TICK`` before each 20 ms audio frame; returns what was sent by reason."""
    sent: Counter[str] = Counter()
    i = 0
    while i < total:
        for _ in range(min(PER_TICK, total - i)):
            reason, build = KINDS[i % len(KINDS)]
            stream.inject(build(stream))
            sent[reason] += 1
            i += 1
        await asyncio.sleep(0.02)
    await stream.drain()
    return sent


async def consent_and_greeting(stream: RawStream) -> None:
    """Key 1 cuts the announcement short and grants consent (turns are persisted); the greeting plays."""
    before = len(stream.received)
    await stream.press("1")
    await stream.wait_for_audio(before)
    await stream.wait_until_quiet()


async def dropped_metric(url: str) -> dict[str, float]:
    async with httpx.AsyncClient(trust_env=False) as http:
        text = (await http.get(url + "/metrics")).text
    return {m[1]: float(m[2]) for m in re.finditer(
        r'^voicedesk_media_messages_dropped_total\{reason="([a-z0-9_]+)"\} ([0-9.e+]+)$', text, re.M)}


async def stored_caller_turns(vault: Vault) -> list[str]:
    async with vault.db.sessions() as s:
        rows = list((await s.scalars(select(Turn).where(Turn.speaker == "caller").order_by(Turn.seq))).all())
    return [await vault.keys.decrypt(r.tenant_id, r.text_enc, table="turns", row_id=r.id, column="text") or ""
            for r in rows]


@pytest.mark.req("R-10.3")
async def test_a_thousand_bad_media_messages_are_dropped_counted_and_the_call_goes_on(rig: Rig) -> None:
    sid, answer = await rig.emulator.ring(to=PRAXIS, from_=CALLER)
    twiml = parse_twiml(answer.text)
    stream = await RawStream.open(rig.emulator.connect_url(twiml.stream_url or ""), sid, twiml.parameters)
    try:
        await stream.wait_for_audio(0)
        await consent_and_greeting(stream)
        await stream.reply_to(tone(WHERE, 600))

        # garbage before, during and after a caller turn, all on the same socket
        garbage = asyncio.create_task(inject_garbage(stream, GARBAGE))
        before = len(stream.received)
        await asyncio.sleep(0.2)
        await stream.say(tone(HOURS, 600))
        sent = await garbage
        await stream.wait_for_audio(before)
        await stream.wait_until_quiet()
        assert not stream.closed.is_set(), f"server closed the stream (code {stream.close_code})"

        before = len(stream.received)
        await stream.reply_to(tone(PRICES, 600))  # audio still flows both ways
        assert len(stream.received) > before
        await stream.stop()

        async with asyncio.timeout(5):  # the counters are added when the server has seen the stream end
            while sum((counted := await dropped_metric(rig.url)).values()) < GARBAGE:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        await stream.abort()

    assert sum(sent.values()) == GARBAGE
    assert {reason: int(n) for reason, n in counted.items() if n} == dict(sent)
    assert await stored_caller_turns(rig.vault) == [PHRASES[WHERE], PHRASES[HOURS], PHRASES[PRICES]]
    async with rig.vault.db.sessions() as s:
        call = (await s.scalars(select(Call))).one()
    assert call.ended_at is not None and call.status == "completed"
