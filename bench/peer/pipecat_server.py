"""The peer for the framework benchmark: a Pipecat server doing the stand-in work.

Runs only inside ``bench/.peer-venv`` (made by ``bench/peer/setup_venv.py``); Pipecat is
never a voicedesk dependency. Same work as ``bench/serve_standin.py``:

- ``POST /twilio/voice`` answers with TwiML ``<Connect><Stream url=ws://127.0.0.1:P/ws>``
  carrying a ``<Parameter>``; ``POST /twilio/status`` accepts the status callback.
- ``WS /ws``: ``FastAPIWebsocketTransport`` + ``TwilioFrameSerializer``
  (``auto_hang_up=False``: no Twilio account), 8 kHz in and out.
- Pipecat's bundled Silero VAD with ``stop_secs`` (default 0.2 s) inside the user
  aggregator, and a turn stop strategy with no extra wait (no Smart Turn).
- Stand-ins that cost time, not CPU: STT yields a fixed transcript ``--stt-delay-ms``
  after the VAD's end of speech, the LLM a fixed sentence ``--llm-delay-ms`` later, TTS a
  pre-rendered clip ``--tts-delay-ms`` later (all ``asyncio.sleep``).

    bench/.peer-venv/bin/python bench/peer/pipecat_server.py --port 8766
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncGenerator
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar
from xml.sax.saxutils import quoteattr

import uvicorn
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import PlainTextResponse, Response
from loguru import logger
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import (
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMRunFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings, STTSettings, TTSSettings
from pipecat.services.stt_service import SegmentedSTTService
from pipecat.services.tts_service import TTSService
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import (
    SpeechTimeoutUserTurnStopStrategy,
)
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.utils.time import time_now_iso8601
from pipecat.workers.runner import WorkerRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from workload import CLIP_SECONDS, SAMPLE_RATE, SENTENCE, TRANSCRIPT, render_clip

_S = TypeVar("_S")


def unset_settings(cls: type[_S]) -> _S:
    """Settings with every field ``None``: the stand-ins have no model, voice or language."""
    return cls(**{f.name: None for f in fields(cls) if f.name != "extra"})  # type: ignore[arg-type]


class StandInSTTService(SegmentedSTTService):
    """Fixed transcript ``delay`` after the VAD's end of speech (the segment arrives then)."""

    def __init__(self, *, delay: float, **kwargs: Any) -> None:
        super().__init__(
            ttfs_p99_latency=delay, trailing_silence_secs=0, settings=unset_settings(STTSettings), **kwargs
        )
        self._delay = delay

    @property
    def wants_wav_segments(self) -> bool:
        return False

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        await asyncio.sleep(self._delay)
        yield TranscriptionFrame(TRANSCRIPT, self._user_id, time_now_iso8601())


class StandInLLMService(LLMService):
    """Answers every context with one fixed sentence ``delay`` later."""

    def __init__(self, *, delay: float, **kwargs: Any) -> None:
        super().__init__(settings=unset_settings(LLMSettings), **kwargs)
        self._delay = delay

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            await self.push_frame(LLMFullResponseStartFrame())
            await asyncio.sleep(self._delay)
            await self.push_frame(LLMTextFrame(SENTENCE))
            await self.push_frame(LLMFullResponseEndFrame())
        else:
            await self.push_frame(frame, direction)


class StandInTTSService(TTSService):
    """Yields the pre-rendered clip ``delay`` after it is asked for a sentence."""

    def __init__(self, *, delay: float, clip: bytes, **kwargs: Any) -> None:
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            sample_rate=SAMPLE_RATE,
            settings=unset_settings(TTSSettings),
            **kwargs,
        )
        self._delay = delay
        self._clip = clip

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        await asyncio.sleep(self._delay)
        yield TTSAudioRawFrame(self._clip, SAMPLE_RATE, 1, context_id=context_id)


def twiml(ws_url: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        f"<Stream url={quoteattr(ws_url)}>"
        '<Parameter name="bench" value="pipecat"/>'
        "</Stream></Connect></Response>"
    )


def create_app(args: argparse.Namespace) -> FastAPI:
    app = FastAPI()
    clip = render_clip(args.clip_seconds).tobytes()
    ws_url = f"ws://127.0.0.1:{args.port}/ws"

    @app.get("/healthz")
    async def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.post("/twilio/voice")
    async def voice(request: Request) -> Response:
        await request.body()
        return Response(content=twiml(ws_url), media_type="application/xml")

    @app.post("/twilio/status")
    async def status(request: Request) -> Response:
        await request.body()
        return Response(status_code=204)

    @app.websocket("/ws")
    async def media(websocket: WebSocket) -> None:
        await websocket.accept()
        # Twilio sends "connected" then "start"; the serializer needs the stream sid.
        start: dict[str, object] = {}
        for _ in range(2):
            message = json.loads(await websocket.receive_text())
            if message.get("event") == "start":
                start = message["start"]
        stream_sid = str(start.get("streamSid", ""))
        call_sid = str(start.get("callSid", ""))
        await run_bot(websocket, stream_sid, call_sid, clip, args)

    return app


async def run_bot(websocket: WebSocket, stream_sid: str, call_sid: str, clip: bytes, args: argparse.Namespace) -> None:
    serializer = TwilioFrameSerializer(
        stream_sid=stream_sid,
        call_sid=call_sid,
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=serializer,
        ),
    )
    stt = StandInSTTService(delay=args.stt_delay_ms / 1000)
    llm = StandInLLMService(delay=args.llm_delay_ms / 1000)
    tts = StandInTTSService(delay=args.tts_delay_ms / 1000, clip=clip)
    context = LLMContext([{"role": "system", "content": "stand-in"}])
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=SileroVADAnalyzer(params=VADParams(stop_secs=args.vad_stop_ms / 1000)),
            user_turn_strategies=UserTurnStrategies(stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.0)]),
        ),
    )
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            aggregators.user(),
            llm,
            tts,
            transport.output(),
            aggregators.assistant(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=SAMPLE_RATE, audio_out_sample_rate=SAMPLE_RATE),
        idle_timeout_secs=None,
    )

    @transport.event_handler("on_client_connected")
    async def on_connected(_transport: object, _ws: object) -> None:
        if args.greet:
            await worker.queue_frames([LLMRunFrame()])

    @transport.event_handler("on_client_disconnected")
    async def on_disconnected(_transport: object, _ws: object) -> None:
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--stt-delay-ms", type=int, default=150)
    parser.add_argument("--llm-delay-ms", type=int, default=200)
    parser.add_argument("--tts-delay-ms", type=int, default=100)
    parser.add_argument("--vad-stop-ms", type=int, default=200)
    parser.add_argument("--clip-seconds", type=float, default=CLIP_SECONDS)
    parser.add_argument("--greet", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    logger.remove()
    logger.add(sys.stderr, level=args.log_level)
    uvicorn.run(create_app(args), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
