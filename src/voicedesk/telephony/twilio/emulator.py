"""``TwilioEmulator``: plays Twilio toward a running voicedesk server (softphone, tests, bench).

What one emulated call does, in Twilio's order and wire formats (protocols.md §1-§3)::

    POST {public}/twilio/voice   signed form (CallSid, AccountSid, From, To, CallStatus=ringing, …)
      <- TwiML <Connect [action]><Stream url><Parameter …/></Stream></Connect>
    WS  {stream url}             signed upgrade (x-twilio-signature over the wss URL)
      -> connected, start (customParameters = the <Parameter>s)
      -> media every 20 ms (160 bytes μ-law), paced on an absolute monotonic schedule;
         silence whenever nothing is being said, like a real phone line; dtmf when pressed
      <- media   queued on a simulated playout clock (8 bytes/ms), "played" in order
      <- mark    echoed once the audio queued before it has played
      <- clear   drops queued audio, echoes every pending mark at once
    caller hangs up: -> stop, close, POST {public}/twilio/status (completed, CallDuration)
    server closes the socket: POST the <Connect action> (if any) and follow its TwiML — a new
         <Connect><Stream> reconnects (back to the assistant), anything else ends the call.

Voice-to-voice latency per turn: the send time of the last voiced frame (louder than -40 dBFS)
of each ``say`` -> arrival of the first audible assistant media after it; speaking again
before a reply cancels that turn (``EmulatedCall.latencies``).

Requests are signed over ``public_url`` (what Twilio is configured with) and sent to
``server_url`` (where the server really listens; default the same), so the emulator also
works against a server behind a tunnel. One ``TwilioEmulator`` can run many calls
concurrently on one event loop; each call costs one 20 ms timer task and one reader task.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import secrets
import time
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Final

import httpx
import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection

from voicedesk.telephony.twilio.signature import SIGNATURE_HEADER, sign, websocket_url
from voicedesk.voice.codecs import PCM, resample, ulaw_decode, ulaw_encode

FRAME_MS: Final = 20
FRAME_BYTES: Final = 160
SAMPLE_RATE: Final = 8000
SILENCE: Final = b"\xff" * FRAME_BYTES
VOICED_DBFS: Final = -40.0
AUDIBLE_SAMPLE: Final = 64
_RESYNC_S: Final = 0.5


class EmulatorError(Exception):
    """The server did not behave like Twilio expects (HTTP error, TwiML without a stream, …)."""


@dataclass(frozen=True)
class TwimlAnswer:
    """What the emulator understood of a TwiML document."""

    xml: str
    stream_url: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    action_url: str | None = None
    rejected: str | None = None
    hangup: bool = False
    says: tuple[str, ...] = ()
    dial_numbers: tuple[str, ...] = ()


def parse_twiml(xml: str) -> TwimlAnswer:
    """Read the verbs the emulator acts on; raises ``EmulatorError`` for non-TwiML."""
    try:
        root = ET.fromstring(xml)  # noqa: S314 - the server under test's own answer
    except ET.ParseError as exc:
        raise EmulatorError(f"not XML: {xml[:120]!r}") from exc
    if root.tag != "Response":
        raise EmulatorError(f"TwiML root must be <Response>, got <{root.tag}>")
    stream = root.find("./Connect/Stream")
    connect = root.find("./Connect")
    reject = root.find("./Reject")
    return TwimlAnswer(
        xml=xml,
        stream_url=stream.get("url") if stream is not None else None,
        parameters={
            p.get("name", ""): p.get("value", "")
            for p in (stream.findall("Parameter") if stream is not None else [])
        },
        action_url=connect.get("action") if connect is not None else None,
        rejected=(reject.get("reason") or "rejected") if reject is not None else None,
        hangup=root.find("./Hangup") is not None,
        says=tuple(s.text or "" for s in root.findall("./Say")),
        dial_numbers=tuple(n.text or "" for n in root.findall("./Dial/Number")),
    )


@dataclass(frozen=True)
class LatencySample:
    """One turn: caller's last voiced frame sent -> first audible reply media received."""

    voiced_end: float
    first_audio: float

    @property
    def seconds(self) -> float:
        return self.first_audio - self.voiced_end


def _voiced(pcm: PCM) -> bool:
    if pcm.size == 0:
        return False
    rms = math.sqrt(float(np.mean(pcm.astype(np.float64) ** 2)))
    return rms > 0 and 20 * math.log10(rms / 32768) > VOICED_DBFS


def _audible(ulaw: bytes) -> bool:
    return int(np.abs(ulaw_decode(ulaw).astype(np.int32)).max(initial=0)) > AUDIBLE_SAMPLE


@dataclass
class _Frame:
    ulaw: bytes
    voiced: bool
    ends_turn: bool = False
    """The last voiced frame of an utterance: the reply clock starts when it is sent."""
    done: asyncio.Future[None] | None = None


class EmulatedCall:
    """One live emulated call; created by ``TwilioEmulator.place_call``.

    Caller side: ``say``, ``press``, ``hang_up``. Listener side: ``played`` (μ-law that has
    "played" on the line), ``marks_echoed``, ``clears``, ``latencies``, ``wait_until_quiet``,
    ``wait_for_mark``, ``ended`` (event), ``answers`` (every TwiML the call received).
    """

    def __init__(
        self,
        emulator: TwilioEmulator,
        call_sid: str,
        from_: str,
        to: str,
        answer: TwimlAnswer,
        on_played: Callable[[bytes], None] | None,
    ) -> None:
        self._emu = emulator
        self.call_sid = call_sid
        self.from_ = from_
        self.to = to
        self.answers: list[TwimlAnswer] = [answer]
        self.on_played = on_played
        self.stream_sid = ""
        self.streams = 0
        self.answered_at = emulator.clock()
        # caller -> server
        self._outgoing: deque[_Frame] = deque()
        self._control: deque[tuple[dict[str, Any], asyncio.Future[None] | None]] = deque()
        self._seq = 0
        self._chunk = 0
        self.frames_sent = 0
        self.max_lag_s = 0.0
        self.resyncs = 0
        # server -> caller
        self._playout: deque[bytes | str] = deque()
        self._play_clock = 0.0
        self.received = bytearray()
        self.played = bytearray()
        self.media_in = 0
        self.marks_received: list[str] = []
        self.marks_echoed: list[str] = []
        self.clears = 0
        self.last_media_at = 0.0
        self.latencies: list[LatencySample] = []
        self._last_voiced_at: float | None = None
        self._awaiting_reply = False
        # lifecycle
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._pending: set[asyncio.Future[None]] = set()
        self._mark_events: dict[str, asyncio.Event] = {}
        self._stream_opened = asyncio.Event()
        self.protocol_errors = 0
        self._hanging_up = False
        self.ended = asyncio.Event()
        self.end_reason = ""
        self.duration_s = 0
        self.status_response: httpx.Response | None = None

    @property
    def parameters(self) -> Mapping[str, str]:
        return self.answers[-1].parameters

    @property
    def playout_pending_bytes(self) -> int:
        return sum(len(item) for item in self._playout if isinstance(item, bytes))

    # --- stream lifecycle -----------------------------------------------------------------
    async def _open_stream(self, public_ws: str, parameters: Mapping[str, str]) -> None:
        headers = {}
        if self._emu.sign_websocket:
            headers[SIGNATURE_HEADER] = sign(public_ws, None, self._emu.auth_token)
        ws = await websockets.connect(
            self._emu.connect_url(public_ws), additional_headers=headers, max_size=2**24,
            open_timeout=self._emu.timeout_s, ping_interval=None,
        )
        self._ws = ws
        self.streams += 1
        self._stream_opened.set()
        self.stream_sid = "MZ" + secrets.token_hex(16)
        self._seq = 0
        self._chunk = 0
        self._playout.clear()
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        self._seq += 1
        await ws.send(json.dumps({
            "event": "start", "sequenceNumber": str(self._seq), "streamSid": self.stream_sid,
            "start": {
                "accountSid": self._emu.account_sid, "streamSid": self.stream_sid, "callSid": self.call_sid,
                "tracks": ["inbound"], "customParameters": dict(parameters),
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": SAMPLE_RATE, "channels": 1},
            },
        }))
        self._tasks = [asyncio.create_task(self._line(ws)), asyncio.create_task(self._read(ws))]

    async def _line(self, ws: ClientConnection) -> None:
        """The 20 ms clock: mark echoes due, queued control messages, one media frame."""
        clock = self._emu.clock
        t0 = clock()
        n = 0
        try:
            while True:
                due = t0 + n * FRAME_MS / 1000
                delay = due - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                now = clock()
                lag = now - due
                self.max_lag_s = max(self.max_lag_s, lag)
                if lag > _RESYNC_S:  # the loop stalled; do not burst seconds of audio
                    self.resyncs += 1
                    t0, n = now, 0
                n += 1
                for name in self._advance_playout(now):
                    await self._send_event(ws, "mark", {"mark": {"name": name}})
                    self.marks_echoed.append(name)
                    self._mark_event(name).set()
                while self._control:
                    message, done = self._control.popleft()
                    await self._send_event(ws, message["event"], message["body"])
                    if done is not None and not done.done():
                        done.set_result(None)
                await self._send_frame(ws, now)
        except websockets.ConnectionClosed:
            return

    async def _send_event(self, ws: ClientConnection, event: str, body: Mapping[str, Any]) -> None:
        self._seq += 1
        await ws.send(json.dumps(
            {"event": event, "sequenceNumber": str(self._seq), "streamSid": self.stream_sid, **body}
        ))

    async def _send_frame(self, ws: ClientConnection, now: float) -> None:
        frame = self._outgoing.popleft() if self._outgoing else _Frame(SILENCE, voiced=False)
        self._chunk += 1
        self._seq += 1
        payload = base64.b64encode(frame.ulaw).decode("ascii")
        await ws.send(
            f'{{"event":"media","sequenceNumber":"{self._seq}","streamSid":"{self.stream_sid}",'
            f'"media":{{"track":"inbound","chunk":"{self._chunk}",'
            f'"timestamp":"{(self._chunk - 1) * FRAME_MS}","payload":"{payload}"}}}}'
        )
        self.frames_sent += 1
        if frame.voiced:
            # speaking again cancels a pending turn; the utterance's last voiced frame opens one
            self._last_voiced_at = self._emu.clock()
            self._awaiting_reply = frame.ends_turn
        if frame.done is not None and not frame.done.done():
            frame.done.set_result(None)

    def _advance_playout(self, now: float) -> list[str]:
        """Play ``now - play_clock`` worth of queued audio; return the marks reached."""
        reached: list[str] = []
        budget = int((now - self._play_clock) * SAMPLE_RATE)
        self._play_clock += budget / SAMPLE_RATE
        while self._playout:
            head = self._playout[0]
            if isinstance(head, str):
                reached.append(head)
                self._playout.popleft()
                continue
            if budget <= 0:
                break
            take = head[:budget]
            budget -= len(take)
            self.played += take
            if self.on_played is not None:
                self.on_played(take)
            if len(take) == len(head):
                self._playout.popleft()
            else:
                self._playout[0] = head[len(take):]
        if not self._playout:
            self._play_clock = now  # an idle line does not bank playout time
        return reached

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self._on_message(raw)
        except websockets.ConnectionClosed:
            pass
        finally:
            for task in self._tasks:
                if task is not asyncio.current_task():
                    task.cancel()
            if not self._hanging_up:
                task = asyncio.create_task(self._after_stream())
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    def _on_message(self, raw: str | bytes) -> None:
        now = self._emu.clock()
        try:
            msg = json.loads(raw)
            event = msg["event"]
            if event == "media":
                audio = base64.b64decode(msg["media"]["payload"])
                if not self._playout:
                    self._play_clock = now
                self._playout.append(audio)
                self.received += audio
                self.media_in += 1
                self.last_media_at = now
                voiced_end = self._last_voiced_at
                if self._awaiting_reply and voiced_end is not None and _audible(audio):
                    self.latencies.append(LatencySample(voiced_end, now))
                    self._awaiting_reply = False
            elif event == "mark":
                name = msg["mark"]["name"]
                self.marks_received.append(name)
                self._playout.append(str(name))
            elif event == "clear":
                self.clears += 1
                pending = [item for item in self._playout if isinstance(item, str)]
                self._playout = deque(pending)  # audio gone; marks echo on the next tick
        except (ValueError, KeyError, TypeError):
            self.protocol_errors += 1

    async def _after_stream(self) -> None:
        """The server closed the socket: do what Twilio does after ``</Connect>``."""
        answer = self.answers[-1]
        if answer.action_url:
            form = self._emu.call_params(self.call_sid, self.from_, self.to, "in-progress")
            response = await self._emu.post(answer.action_url, form)
            if response.is_success:
                follow = parse_twiml(response.text)
                self.answers.append(follow)
                if follow.stream_url:
                    await self._open_stream(follow.stream_url, follow.parameters)
                    return
                self.end_reason = "hangup" if follow.hangup else "twiml-ended"
            else:
                self.end_reason = f"action-http-{response.status_code}"
        else:
            self.end_reason = "stream-closed"
        await self._finish()

    async def _finish(self) -> None:
        self.duration_s = max(1, math.ceil(self._emu.clock() - self.answered_at))
        form = self._emu.call_params(self.call_sid, self.from_, self.to, "completed")
        form.update({
            "CallDuration": str(self.duration_s),
            "Timestamp": format_datetime(datetime.now(UTC), usegmt=True),
            "CallbackSource": "call-progress-events",
            "SequenceNumber": "0",
        })
        try:
            self.status_response = await self._emu.post(self._emu.public(self._emu.status_path), form)
        finally:
            self.ended.set()
            for pending in self._pending:
                if not pending.done():
                    pending.set_exception(EmulatorError(f"call ended ({self.end_reason})"))
            self._pending.clear()

    # --- caller actions ---------------------------------------------------------------------
    def queue_audio(self, pcm: PCM, sample_rate: int = SAMPLE_RATE) -> asyncio.Future[None]:
        """Queue caller speech; the future resolves when its last frame has been sent."""
        pcm8k = resample(pcm, sample_rate, SAMPLE_RATE)
        pad = -pcm8k.size % FRAME_BYTES
        if pad:
            pcm8k = np.concatenate([pcm8k, np.zeros(pad, dtype=np.int16)])
        done = self._future()
        frames = pcm8k.reshape(-1, FRAME_BYTES) if pcm8k.size else np.zeros((0, FRAME_BYTES), np.int16)
        if not len(frames):
            done.set_result(None)
            return done
        voiced = [_voiced(frame) for frame in frames]
        last_voiced = max((i for i, v in enumerate(voiced) if v), default=-1)
        for i, frame in enumerate(frames):
            self._outgoing.append(_Frame(
                ulaw_encode(frame), voiced[i], ends_turn=i == last_voiced,
                done=done if i == len(frames) - 1 else None,
            ))
        return done

    async def say(self, pcm: PCM, sample_rate: int = SAMPLE_RATE) -> None:
        """Speak ``pcm`` in real time (returns once it has been sent)."""
        await self._until(self.queue_audio(pcm, sample_rate))

    async def press(self, digits: str) -> None:
        """Press DTMF keys, one ``dtmf`` message each, on the next ticks."""
        for digit in digits:
            done = self._future()
            body = {"dtmf": {"track": "inbound_track", "digit": digit}}
            self._control.append(({"event": "dtmf", "body": body}, done))
            await self._until(done)

    def _future(self) -> asyncio.Future[None]:
        if self.ended.is_set():
            raise EmulatorError(f"call ended ({self.end_reason})")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.add(done)
        done.add_done_callback(self._pending.discard)
        return done

    async def _until(self, done: asyncio.Future[None]) -> None:
        await done  # EmulatorError if the call ends first

    def _mark_event(self, name: str) -> asyncio.Event:
        return self._mark_events.setdefault(name, asyncio.Event())

    async def wait_until_quiet(self, quiet_s: float = 0.5, timeout_s: float = 30.0) -> None:
        """Wait until nothing is queued for playout and no media arrived for ``quiet_s``."""
        deadline = self._emu.clock() + timeout_s
        while True:
            now = self._emu.clock()
            if not self._playout and now - self.last_media_at >= quiet_s:
                return
            if self.ended.is_set():
                return
            if now > deadline:
                raise TimeoutError("the assistant kept talking")
            await asyncio.sleep(0.02)

    async def wait_for_mark(self, name: str, timeout_s: float = 30.0) -> None:
        """Wait until the mark ``name`` was echoed (its audio played or was cleared)."""
        async with asyncio.timeout(timeout_s):
            await self._mark_event(name).wait()

    async def wait_for_stream(self, count: int, timeout_s: float = 30.0) -> None:
        """Wait until ``count`` media streams have been opened (2 = back to the assistant once)."""
        async with asyncio.timeout(timeout_s):
            while self.streams < count:
                self._stream_opened.clear()
                await self._stream_opened.wait()

    async def wait_ended(self, timeout_s: float = 30.0) -> None:
        async with asyncio.timeout(timeout_s):
            await self.ended.wait()

    async def hang_up(self) -> None:
        """The caller hangs up: ``stop``, close the socket, post the status callback."""
        if self.ended.is_set():
            return
        self._hanging_up = True
        ws = self._ws
        tasks = [*self._tasks, *(t for t in self._background if t is not asyncio.current_task())]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if ws is not None:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self._send_event(
                    ws, "stop", {"stop": {"accountSid": self._emu.account_sid, "callSid": self.call_sid}}
                )
            await ws.close()
        self.end_reason = "caller-hung-up"
        await self._finish()


class TwilioEmulator:
    """Acts as Twilio toward a voicedesk server at ``public_url`` (see the module doc)."""

    def __init__(
        self,
        public_url: str,
        auth_token: str,
        *,
        server_url: str | None = None,
        account_sid: str = "AC" + "0" * 32,
        voice_path: str = "/twilio/voice",
        status_path: str = "/twilio/status",
        sign_websocket: bool = True,
        timeout_s: float = 15.0,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.public_url = public_url.rstrip("/")
        self.server_url = (server_url or public_url).rstrip("/")
        self.auth_token = auth_token
        self.account_sid = account_sid
        self.voice_path = voice_path
        self.status_path = status_path
        self.sign_websocket = sign_websocket
        self.timeout_s = timeout_s
        self.clock = clock
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout_s, trust_env=False)

    async def __aenter__(self) -> TwilioEmulator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    def public(self, path: str) -> str:
        return self.public_url + path

    def connect_url(self, public: str) -> str:
        """Where to really send a request Twilio would send to ``public``."""
        for pub, real in ((self.public_url, self.server_url),
                          (websocket_url(self.public_url), websocket_url(self.server_url))):
            if public.startswith(pub):
                return real + public[len(pub):]
        return public

    def call_params(self, call_sid: str, from_: str, to: str, status: str) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "CallSid": call_sid,
            "CallStatus": status, "Direction": "inbound", "From": from_, "To": to,
            "Caller": from_, "Called": to,
        }

    async def post(
        self, public: str, form: Mapping[str, str], *, signature: str | None = None
    ) -> httpx.Response:
        """A form POST as Twilio sends it, signed over ``public`` unless ``signature`` is given."""
        sig = sign(public, form, self.auth_token) if signature is None else signature
        headers = {SIGNATURE_HEADER: sig}
        return await self._http.post(self.connect_url(public), data=dict(form), headers=headers)

    async def ring(
        self, *, to: str, from_: str = "+4915112345678", call_sid: str | None = None,
        signature: str | None = None,
    ) -> tuple[str, httpx.Response]:
        """Only the incoming-call webhook: (call_sid, response). For refusal tests."""
        sid = call_sid or "CA" + secrets.token_hex(16)
        form = self.call_params(sid, from_, to, "ringing")
        return sid, await self.post(self.public(self.voice_path), form, signature=signature)

    async def place_call(
        self,
        *,
        to: str,
        from_: str = "+4915112345678",
        call_sid: str | None = None,
        on_played: Callable[[bytes], None] | None = None,
    ) -> EmulatedCall:
        """Ring voicedesk and connect the media stream its TwiML asks for."""
        sid, response = await self.ring(to=to, from_=from_, call_sid=call_sid)
        if not response.is_success:
            raise EmulatorError(f"incoming-call webhook answered HTTP {response.status_code}")
        answer = parse_twiml(response.text)
        if not answer.stream_url:
            raise EmulatorError(f"TwiML has no <Connect><Stream>: {response.text[:200]}")
        call = EmulatedCall(self, sid, from_, to, answer, on_played)
        await call._open_stream(answer.stream_url, answer.parameters)
        return call
