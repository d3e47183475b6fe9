"""The Twilio emulator against a tiny in-test server that speaks the protocol (echo assistant).

The echo server uses our own signature, TwiML and serializer modules, so these tests also
prove the pieces fit together over a real socket: signed webhook -> TwiML -> signed media
WebSocket -> token on ``start`` -> audio, marks, clear -> Connect action -> status callback.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pytest
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response

from tests.support.fake_twilio import serve_asgi
from voicedesk.domain.errors import AuthenticationError
from voicedesk.telephony.twilio import twiml
from voicedesk.telephony.twilio.emulator import EmulatorError, TwilioEmulator, parse_twiml
from voicedesk.telephony.twilio.media_stream import TwilioMediaSerializer
from voicedesk.telephony.twilio.signature import (
    check_signature,
    issue_call_token,
    signed_url,
    verify_call_token,
    websocket_url,
)
from voicedesk.voice.frames import (
    AudioIn,
    AudioOut,
    ClearOut,
    KeyPressed,
    MarkOut,
    PlaybackMarked,
    StreamStarted,
    StreamStopped,
)

AUTH_TOKEN = "echo-auth-token"
SECRET = b"echo-call-token-secret-32-bytes!"
TO = "+4930123456"


def tone(seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(8000 * seconds)) / 8000
    return (np.sin(2 * np.pi * freq * t) * 12000).astype(np.int16)


@dataclass
class EchoServer:
    """Echoes caller audio; keys: 5 = 1 s tone + mark "tone", 9 = clear, 0 = close the stream."""

    public_url: str = ""
    back_to_assistant_once: bool = False
    status_callbacks: list[dict[str, str]] = field(default_factory=list)
    streams: list[dict[str, object]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    used_tokens: set[str] = field(default_factory=set)

    def app(self) -> FastAPI:
        app = FastAPI()

        async def verified_form(request: Request) -> dict[str, str] | None:
            form = await request.form()
            url = signed_url(self.public_url, request.url.path, request.scope["query_string"])
            try:
                check_signature(url, form, request.headers.get("x-twilio-signature"), AUTH_TOKEN)
            except AuthenticationError:
                self.refused.append(request.url.path)
                return None
            return {k: str(v) for k, v in form.items()}

        def connect(call_sid: str) -> str:
            token = issue_call_token(SECRET, call_sid, "tenant-a", 30, datetime.now(UTC))
            return twiml.connect_stream(
                websocket_url(self.public_url) + "/twilio/media", {"token": token},
                action_url=self.public_url + "/twilio/stream-ended",
            )

        @app.post("/twilio/voice")
        async def voice(request: Request) -> Response:
            form = await verified_form(request)
            if form is None:
                return Response(status_code=403)
            return Response(connect(form["CallSid"]), media_type=twiml.CONTENT_TYPE)

        @app.post("/twilio/stream-ended")
        async def stream_ended(request: Request) -> Response:
            form = await verified_form(request)
            if form is None:
                return Response(status_code=403)
            if self.back_to_assistant_once:
                self.back_to_assistant_once = False
                return Response(connect(form["CallSid"]), media_type=twiml.CONTENT_TYPE)
            return Response(twiml.hang_up(), media_type=twiml.CONTENT_TYPE)

        @app.post("/twilio/status")
        async def status(request: Request) -> Response:
            form = await verified_form(request)
            if form is None:
                return Response(status_code=403)
            self.status_callbacks.append(form)
            return Response(status_code=204)

        @app.websocket("/twilio/media")
        async def media(ws: WebSocket) -> None:
            url = websocket_url(signed_url(self.public_url, ws.url.path))
            try:
                check_signature(url, None, ws.headers.get("x-twilio-signature"), AUTH_TOKEN)
            except AuthenticationError:
                self.refused.append("ws")
                await ws.close(code=1008)
                return
            await ws.accept()
            serializer = TwilioMediaSerializer()
            record: dict[str, object] = {"keys": [], "marks": [], "audio_frames": 0, "stopped": False}
            self.streams.append(record)
            audio_frames = 0
            while True:
                try:
                    text = await ws.receive_text()
                except WebSocketDisconnect:
                    return
                frame = serializer.parse(text)
                out: list[object] = []
                if isinstance(frame, StreamStarted):
                    claim = verify_call_token(SECRET, frame.custom_parameters.get("token"), datetime.now(UTC),
                                              call_id=frame.call_sid)
                    if claim.token_id in self.used_tokens:
                        await ws.close(code=1008)
                        return
                    self.used_tokens.add(claim.token_id)
                elif isinstance(frame, AudioIn):
                    audio_frames += 1
                    record["audio_frames"] = audio_frames
                    out.append(AudioOut(pcm=frame.pcm))
                    if audio_frames % 25 == 0:
                        out.append(MarkOut(name=f"m{audio_frames}"))
                elif isinstance(frame, KeyPressed):
                    record["keys"].append(frame.digit)  # type: ignore[attr-defined]
                    if frame.digit == "5":
                        out += [AudioOut(pcm=tone(1.0)), MarkOut(name="tone")]
                    elif frame.digit == "9":
                        out.append(ClearOut())
                    elif frame.digit == "0":
                        await ws.close()
                        return
                elif isinstance(frame, PlaybackMarked):
                    record["marks"].append(frame.name)  # type: ignore[attr-defined]
                elif isinstance(frame, StreamStopped):
                    record["stopped"] = True
                    await ws.close()
                    return
                for item in out:
                    for message in serializer.serialize(item):  # type: ignore[arg-type]
                        await ws.send_text(message)

        return app


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    server = EchoServer()
    async with serve_asgi(server.app()) as url:
        server.public_url = url
        yield server


@pytest.fixture
async def emulator(echo: EchoServer) -> AsyncIterator[TwilioEmulator]:
    async with TwilioEmulator(echo.public_url, AUTH_TOKEN) as emu:
        yield emu


@pytest.mark.req("R-3.1")
async def test_call_round_trip_audio_marks_latency_and_status_callback(
    echo: EchoServer, emulator: TwilioEmulator
) -> None:
    call = await emulator.place_call(to=TO, from_="+4915100000001")
    assert set(call.parameters) == {"token"}
    await call.say(tone(0.6))
    await asyncio.sleep(0.4)  # the echo of the tone's tail plays out
    await call.hang_up()
    assert call.ended.is_set()
    assert call.end_reason == "caller-hung-up"
    # the server heard the tone and the surrounding silence, and got our stop
    [stream] = echo.streams
    assert stream["audio_frames"] == call.frames_sent
    assert stream["stopped"] is True
    # echoed audio came back and played on the simulated line, marks were echoed in order
    # (the echo of the very last frame may still be in flight when the caller hangs up)
    assert 160 * (call.frames_sent - 2) <= len(call.received) <= 160 * call.frames_sent
    assert len(call.played) > 8000 * 0.6
    assert call.marks_echoed == call.marks_received[: len(call.marks_echoed)]
    assert stream["marks"] == call.marks_echoed
    # one turn: caller's last voiced frame -> first audible echo
    [sample] = call.latencies
    assert 0 <= sample.seconds < 0.25
    # status callback, signed and well-formed
    [status] = echo.status_callbacks
    assert status["CallSid"] == call.call_sid
    assert status["CallStatus"] == "completed"
    assert int(status["CallDuration"]) >= 1
    assert status["From"] == "+4915100000001" and status["To"] == TO
    assert echo.refused == []
    assert call.protocol_errors == 0


async def test_mark_is_echoed_only_after_its_audio_has_played(emulator: TwilioEmulator) -> None:
    call = await emulator.place_call(to=TO)
    await asyncio.sleep(0.1)
    await call.press("5")
    sent_at = emulator.clock()
    await call.wait_for_mark("tone", timeout_s=5)
    assert emulator.clock() - sent_at >= 0.95  # 8000 bytes at 8 bytes/ms
    await call.hang_up()


async def test_clear_flushes_audio_and_echoes_pending_marks(emulator: TwilioEmulator) -> None:
    call = await emulator.place_call(to=TO)
    await call.press("5")
    await asyncio.sleep(0.2)
    await call.press("9")
    sent_at = emulator.clock()
    await call.wait_for_mark("tone", timeout_s=5)
    assert emulator.clock() - sent_at < 0.3
    assert call.clears == 1
    assert call.playout_pending_bytes < 400
    await call.hang_up()


async def test_dtmf_reaches_the_server(echo: EchoServer, emulator: TwilioEmulator) -> None:
    call = await emulator.place_call(to=TO)
    await call.press("12#")
    await call.hang_up()
    assert echo.streams[0]["keys"] == ["1", "2", "#"]


@pytest.mark.req("R-10.3")
async def test_forged_webhook_is_refused(echo: EchoServer) -> None:
    async with TwilioEmulator(echo.public_url, "not-the-auth-token") as forger:
        with pytest.raises(EmulatorError, match="403"):
            await forger.place_call(to=TO)
    async with TwilioEmulator(echo.public_url, AUTH_TOKEN) as emu:
        _, response = await emu.ring(to=TO, signature="AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        assert response.status_code == 403
    assert echo.refused == ["/twilio/voice", "/twilio/voice"]


async def test_server_closing_the_stream_follows_connect_action_and_ends_the_call(
    echo: EchoServer, emulator: TwilioEmulator
) -> None:
    call = await emulator.place_call(to=TO)
    await call.press("0")
    await call.wait_ended(timeout_s=5)
    assert call.end_reason == "hangup"
    assert [a.hangup for a in call.answers] == [False, True]
    assert [s["CallStatus"] for s in echo.status_callbacks] == ["completed"]
    with pytest.raises(EmulatorError):
        await call.say(tone(0.1))


async def test_back_to_assistant_reconnects_a_new_stream_with_a_fresh_token(
    echo: EchoServer, emulator: TwilioEmulator
) -> None:
    echo.back_to_assistant_once = True
    call = await emulator.place_call(to=TO)
    first_token = call.parameters["token"]
    await call.press("0")
    await call.wait_for_stream(2, timeout_s=5)
    assert call.parameters["token"] != first_token
    await call.say(tone(0.2))
    await call.hang_up()
    assert len(echo.streams) == 2
    assert echo.streams[1]["stopped"] is True
    assert len(echo.status_callbacks) == 1


async def test_many_concurrent_calls(echo: EchoServer, emulator: TwilioEmulator) -> None:
    async def one(i: int) -> float:
        call = await emulator.place_call(to=TO, from_=f"+49151000{i:05d}")
        await call.say(tone(0.3, 300 + 20 * i))
        await asyncio.sleep(0.3)
        await call.hang_up()
        assert call.max_lag_s < 0.2
        return call.latencies[0].seconds

    latencies = await asyncio.gather(*(one(i) for i in range(20)))
    assert all(0 <= s < 0.5 for s in latencies)
    assert len(echo.status_callbacks) == 20
    assert len({s["CallSid"] for s in echo.status_callbacks}) == 20


def test_parse_twiml() -> None:
    answer = parse_twiml(
        twiml.connect_stream("wss://vd.example/twilio/media", {"token": "t", "tenant": "a"},
                             action_url="https://vd.example/a")
    )
    assert answer.stream_url == "wss://vd.example/twilio/media"
    assert answer.parameters == {"token": "t", "tenant": "a"}
    assert answer.action_url == "https://vd.example/a"
    assert parse_twiml(twiml.busy()).rejected == "busy"
    dial = parse_twiml(twiml.cold_transfer("+4930555", caller_id="+4930123", action_url="https://x/t"))
    assert dial.dial_numbers == ("+4930555",)
    with pytest.raises(EmulatorError):
        parse_twiml("<html/>")
