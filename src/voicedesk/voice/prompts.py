"""Fixed texts the call runtime speaks, and a cache of their synthesised audio.

Announcement, consent question and privacy notice come from the tenant profile under a
text version (R-14); the short runtime phrases (apologies, confirmations) are built in.
``PromptCache`` synthesises each sentence once per TTS engine and language, so the
announcement plays without synthesis delay on every call after the first.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from voicedesk.domain.consent import ConsentTexts
from voicedesk.domain.profile import Language, TenantProfile
from voicedesk.voice.frames import PCM
from voicedesk.voice.ports import TextToSpeech


@dataclass(frozen=True)
class Phrases:
    """Short runtime phrases in one language."""

    connect_human: str
    recording_stopped: str
    privacy_offer: str
    privacy_link_sent: str
    sorry_repeat: str
    sorry_technical: str


PHRASES: dict[Language, Phrases] = {
    "de": Phrases(
        connect_human="Einen Moment bitte, ich verbinde Sie mit einem Mitarbeiter.",
        recording_stopped="In Ordnung, dieses Gespräch wird nicht aufgezeichnet.",
        privacy_offer="Möchten Sie den Link per SMS bekommen? Sagen Sie ja, oder drücken Sie die 1.",
        privacy_link_sent="Gern, ich schicke Ihnen den Link per SMS.",
        sorry_repeat="Entschuldigung, das habe ich nicht verstanden. Könnten Sie das bitte wiederholen?",
        sorry_technical="Entschuldigung, ich habe gerade ein technisches Problem. "
        "Ich verbinde Sie mit einem Mitarbeiter.",
    ),
    "en": Phrases(
        connect_human="One moment please, I'll connect you with a member of staff.",
        recording_stopped="All right, this call will not be recorded.",
        privacy_offer="Would you like the link by text message? Say yes, or press 1.",
        privacy_link_sent="Sure, I'll send you the link by text message.",
        sorry_repeat="Sorry, I didn't catch that. Could you say it again, please?",
        sorry_technical="Sorry, I'm having a technical problem. I'll connect you with a member of staff.",
    ),
}


@dataclass(frozen=True)
class CallTexts:
    """Everything fixed that one call may hear, in the call's language."""

    language: Language
    consent: ConsentTexts
    privacy_notice: str
    phrases: Phrases

    @classmethod
    def for_profile(cls, profile: TenantProfile, language: Language, *, text_version: str) -> CallTexts:
        """Pick the profile's texts; ``text_version`` is the id of the published announcement text."""
        controller = profile.controller.name if profile.controller else profile.name
        notice = profile.text(profile.privacy_notice, language).replace("{name}", controller)
        return cls(
            language=language,
            consent=ConsentTexts(
                version=text_version,
                announcement=profile.text(profile.announcement, language),
                question=profile.text(profile.consent_question, language),
            ),
            privacy_notice=notice,
            phrases=PHRASES[language],
        )


class PromptCache:
    """Synthesised audio of fixed sentences, shared by all calls of a process (LRU)."""

    def __init__(self, tts: TextToSpeech, *, max_entries: int = 256) -> None:
        self.tts = tts
        self.max_entries = max_entries
        self._audio: OrderedDict[tuple[str, str, str], asyncio.Future[PCM]] = OrderedDict()

    async def sentence(self, text: str, language: str) -> PCM:
        """The audio of one sentence, synthesised on first use."""
        key = (self.tts.name, language, hashlib.sha256(text.encode("utf-8")).hexdigest())
        fut = self._audio.get(key)
        if fut is not None:
            self._audio.move_to_end(key)
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._audio[key] = fut
        while len(self._audio) > self.max_entries:
            self._audio.popitem(last=False)
        try:
            chunks = [chunk async for chunk in self.tts.synthesize(text, language)]
        except BaseException as exc:
            self._audio.pop(key, None)  # a failed prompt is synthesised again on next use
            if isinstance(exc, asyncio.CancelledError):
                fut.cancel()
            else:
                fut.set_exception(exc)
                fut.exception()  # retrieved here, so an unawaited failure is not logged
            raise
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        fut.set_result(pcm)
        return pcm

    def __len__(self) -> int:
        return len(self._audio)
