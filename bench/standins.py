"""Stand-in engines for the framework benchmark: they cost time, not CPU.

Each implements a voicedesk port structurally (``voice.ports.SpeechToText`` /
``TextToSpeech``, ``dialogue.engine.DialogueEngine``) and answers with fixed output after
a fixed ``asyncio.sleep``, so a run measures voicedesk's own overhead above the sum of the
delays (the floor: VAD stop 200 ms + STT 150 + dialogue 200 + TTS 100 = 650 ms). The VAD
is not stood in: the benchmark uses voicedesk's real one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from numpy.typing import NDArray
from workload import SENTENCE, TRANSCRIPT, render_clip

from voicedesk.dialogue.engine import CallerContext, Conversation, ConversationLog, Reply, Turn
from voicedesk.voice.ports import Transcription

PCM = NDArray[np.int16]


class StandInSpeechToText:
    """Returns ``transcript`` ``delay_s`` after it is handed a finished turn."""

    name = "standin"

    def __init__(self, delay_s: float = 0.150, transcript: str = TRANSCRIPT) -> None:
        self.delay_s = delay_s
        self.transcript = transcript

    async def warm_up(self) -> None:
        return None

    async def transcribe(self, pcm: PCM, sample_rate: int, language: str) -> Transcription:
        await asyncio.sleep(self.delay_s)
        return Transcription(
            text=self.transcript,
            language=language,
            audio_seconds=pcm.size / sample_rate,
            compute_seconds=self.delay_s,
        )


class StandInTextToSpeech:
    """Yields one pre-rendered clip ``delay_s`` after it is asked for a sentence."""

    name = "standin"

    def __init__(self, delay_s: float = 0.100, clip: PCM | None = None) -> None:
        self.delay_s = delay_s
        self.clip = render_clip() if clip is None else clip

    async def warm_up(self) -> None:
        return None

    async def synthesize(self, text: str, language: str) -> AsyncIterator[PCM]:
        await asyncio.sleep(self.delay_s)
        yield self.clip


class StandInConversation:
    """Every answer is ``sentence``, ``delay_s`` after the question; keeps the ``log`` the
    post-call summary reads, so a stand-in call ends like a real one."""

    def __init__(self, ctx: CallerContext, delay_s: float, sentence: str) -> None:
        self.delay_s = delay_s
        self.sentence = sentence
        self.log = ConversationLog(ctx=ctx)

    async def _answer(self, reply: Reply) -> Reply:
        await asyncio.sleep(self.delay_s)
        self.log.turns.append(Turn(speaker="assistant", text=reply.text, reply=reply))
        return reply

    async def greet(self) -> Reply:
        return await self._answer(Reply(text=self.sentence))

    async def respond(self, utterance: str) -> Reply:
        self.log.turns.append(Turn(speaker="caller", text=utterance))
        return await self._answer(Reply(text=self.sentence, intent="other"))

    async def transfer_failed(self, reason: str) -> Reply:
        return await self._answer(Reply(text=self.sentence))

    def heard(self, text: str) -> None:
        return None


class StandInDialogueEngine:
    """Opens ``StandInConversation``s; tools are ignored."""

    name = "standin"

    def __init__(self, delay_s: float = 0.200, sentence: str = SENTENCE) -> None:
        self.delay_s = delay_s
        self.sentence = sentence

    def open(self, ctx: CallerContext, tools: Any) -> Conversation:
        return StandInConversation(ctx, self.delay_s, self.sentence)
