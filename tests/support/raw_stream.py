"""``RawStream``: one Twilio media stream under the test's full control.

``TwilioEmulator`` plays a whole call and reacts on its own (it follows ``<Connect action>``,
posts status callbacks). Some tests must instead decide every step themselves: inject
malformed messages between valid ones, end a stream the way Twilio does when a transfer
takes the call over, open a second stream for the same call, or lose the server mid-call.
``RawStream`` speaks the same protocol (protocols.md §2) and nothing more::

    stream = await RawStream.open(ws_url, call_sid, {"token": token})
    await stream.say(pcm)          # 20 ms media frames on an absolute 20 ms schedule
    stream.inject("{not json")     # goes out before the next frame, as is
    await stream.stop()            # "stop", then close

Outbound audio is "played" on a simulated 8 bytes/ms clock, marks are echoed once the
audio queued before them has played, ``clear`` drops queued audio and echoes pending
marks at once. Sequence numbers and media timestamps are the stream's own; injected
messages do not use them up (``seq`` and ``timestamp_ms`` let a test build stale ones).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
from collections import deque
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection

from voicedesk.voice.codecs import PCM, ulaw_encode

FRAME_MS: Final = 20
FRAME_BYTES: Final = 160
SILENCE: Final = b"\xff" * FRAME_BYTES
ACCOUNT_SID: Final = "AC" + "0" * 32


class RawStream:
    """A media stream of one call; ``open`` connects and sends ``connected`` + ``start``."""

    def __init__(self, ws: ClientConnection, call_sid: str, stream_sid: str) -> None:
        self.ws = ws
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self.seq = 0
        self.chunk = 0
        self.received = bytearray()
        self.marks_received: list[str] = []
        self.marks_echoed: list[str] = []
        self.clears = 0
        self.last_media_at = 0.0
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self._frames: deque[tuple[bytes, asyncio.Future[None] | None]] = deque()
        self._injected: deque[str | bytes] = deque()
        self._playout: deque[bytes | str] = deque()
        self._play_clock = 0.0
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def timestamp_ms(self) -> int:
        """The media timestamp of the last frame sent (ms since the stream started)."""
        return max(0, self.chunk - 1) * FRAME_MS

    @classmethod
    async def open(
        cls,
        url: str,
        call_sid: str,
        parameters: Mapping[str, str],
        *,
        headers: Mapping[str, str] | None = None,
        account_sid: str = ACCOUNT_SID,
    ) -> RawStream:
        ws = await websockets.connect(url, additional_headers=dict(headers or {}), ping_interval=None,
                                      open_timeout=10, max_size=2**24)
        stream = cls(ws, call_sid, "MZ" + secrets.token_hex(16))
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await stream.send_event("start", {"start": {
            "accountSid": account_sid, "streamSid": stream.stream_sid, "callSid": call_sid,
            "tracks": ["inbound"], "customParameters": dict(parameters),
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }})
        stream._tasks = [asyncio.create_task(stream._line()), asyncio.create_task(stream._read())]
        return stream

    # --- caller side ----------------------------------------------------------------------
    async def send_event(self, event: str, body: Mapping[str, Any]) -> None:
        """A well-formed message with the next sequence number, sent now."""
        self.seq += 1
        await self.ws.send(json.dumps(
            {"event": event, "sequenceNumber": str(self.seq), "streamSid": self.stream_sid, **body}
        ))

    def inject(self, message: str | bytes) -> None:
        """Send ``message`` verbatim on the next 20 ms tick, before that tick's audio frame."""
        self._injected.append(message)

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait until every injected message has been sent."""
        async with asyncio.timeout(timeout_s):
            while self._injected:  # noqa: ASYNC110 - the line task empties it
                await asyncio.sleep(0.02)

    async def say(self, pcm: PCM) -> None:
        """Queue 8 kHz audio as 20 ms frames; returns once its last frame has been sent."""
        pad = -pcm.size % FRAME_BYTES
        if pad:
            pcm = np.concatenate([pcm, np.zeros(pad, dtype=np.int16)])
        frames = pcm.reshape(-1, FRAME_BYTES)
        if not len(frames):
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for i, frame in enumerate(frames):
            self._frames.append((ulaw_encode(frame), done if i == len(frames) - 1 else None))
        async with asyncio.timeout(len(frames) * FRAME_MS / 1000 + 10):
            await asyncio.shield(done)

    async def press(self, digit: str) -> None:
        await self.send_event("dtmf", {"dtmf": {"track": "inbound_track", "digit": digit}})

    async def stop(self) -> None:
        """End the stream as Twilio does (call ended, or its TwiML replaced): ``stop``, then close."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.send_event("stop", {"stop": {"accountSid": ACCOUNT_SID, "callSid": self.call_sid}})
        await self.ws.close()
        self.closed.set()

    async def abort(self) -> None:
        """Drop the connection without a ``stop`` (the line went dead)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.ws.close()
        self.closed.set()

    # --- listener side ----------------------------------------------------------------------
    async def wait_for_audio(self, more_than: int, timeout_s: float = 10.0) -> None:
        """Wait until more than ``more_than`` bytes of assistant audio have arrived."""
        async with asyncio.timeout(timeout_s):
            while len(self.received) <= more_than:
                if self.closed.is_set():
                    raise ConnectionError(f"stream closed (code {self.close_code})")
                await asyncio.sleep(0.02)

    async def wait_until_quiet(self, quiet_s: float = 0.3, timeout_s: float = 15.0) -> None:
        """Wait until all assistant audio has played and none arrived for ``quiet_s``."""
        async with asyncio.timeout(timeout_s):
            while self._playout or time.monotonic() - self.last_media_at < quiet_s:
                if self.closed.is_set():
                    return
                await asyncio.sleep(0.02)

    async def reply_to(self, pcm: PCM, timeout_s: float = 10.0) -> None:
        """Say ``pcm`` (then a little silence), wait for the answer to arrive and finish playing.

        Call it while the assistant is quiet: audio still arriving would count as the answer.
        """
        before = len(self.received)
        await self.say(pcm)
        await self.say(np.zeros(1600, dtype=np.int16))
        await self.wait_for_audio(before, timeout_s)
        await self.wait_until_quiet(timeout_s=timeout_s + 10)

    # --- the line -------------------------------------------------------------------------
    async def _line(self) -> None:
        t0 = time.monotonic()
        n = 0
        try:
            while True:
                delay = t0 + n * FRAME_MS / 1000 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                n += 1
                for name in self._advance_playout(time.monotonic()):
                    await self.send_event("mark", {"mark": {"name": name}})
                    self.marks_echoed.append(name)
                while self._injected:
                    await self.ws.send(self._injected.popleft())
                ulaw, done = self._frames.popleft() if self._frames else (SILENCE, None)
                self.chunk += 1
                await self.send_event("media", {"media": {
                    "track": "inbound", "chunk": str(self.chunk), "timestamp": str(self.timestamp_ms),
                    "payload": base64.b64encode(ulaw).decode("ascii"),
                }})
                if done is not None and not done.done():
                    done.set_result(None)
        except websockets.ConnectionClosed:
            return

    def _advance_playout(self, now: float) -> list[str]:
        reached: list[str] = []
        budget = int((now - self._play_clock) * 8000)
        self._play_clock += budget / 8000
        while self._playout:
            head = self._playout[0]
            if isinstance(head, str):
                reached.append(head)
                self._playout.popleft()
                continue
            if budget <= 0:
                break
            take = min(budget, len(head))
            budget -= take
            if take == len(head):
                self._playout.popleft()
            else:
                self._playout[0] = head[take:]
        if not self._playout:
            self._play_clock = now
        return reached

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                event = msg.get("event")
                if event == "media":
                    audio = base64.b64decode(msg["media"]["payload"])
                    if not self._playout:
                        self._play_clock = time.monotonic()
                    self._playout.append(audio)
                    self.received += audio
                    self.last_media_at = time.monotonic()
                elif event == "mark":
                    self.marks_received.append(msg["mark"]["name"])
                    self._playout.append(str(msg["mark"]["name"]))
                elif event == "clear":
                    self.clears += 1
                    self._playout = deque(m for m in self._playout if isinstance(m, str))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()
            for task in self._tasks:
                if task is not asyncio.current_task():
                    task.cancel()
