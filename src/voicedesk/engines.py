"""The speech and dialogue engines of a running instance (a composition-root concern).

``build_engines`` loads the offline engines once (STT per language, TTS per language, the
VAD factory, the dialogue engine); ``create_app(..., overrides=Engines(...))`` replaces them
(benchmarks, tests). Models are warmed up at start so the first call is not slow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voicedesk.config import Settings
from voicedesk.dialogue.engine import DialogueEngine
from voicedesk.domain.errors import ConfigError
from voicedesk.voice.ports import SpeechToText, TextToSpeech, VoiceActivityDetector
from voicedesk.voice.prompts import PromptCache


@dataclass
class Engines:
    stt: dict[str, SpeechToText]
    tts: dict[str, TextToSpeech]
    vad_factory: Callable[[], VoiceActivityDetector]
    dialogue: DialogueEngine
    hangover_ms: int | None = None
    prompts: dict[str, PromptCache] = field(default_factory=dict)
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def prompt_cache(self, language: str) -> PromptCache:
        cache = self.prompts.get(language)
        if cache is None:
            cache = self.prompts[language] = PromptCache(self.tts_for(language))
        return cache

    def stt_for(self, language: str) -> SpeechToText:
        engine = self.stt.get(language)
        if engine is None:
            raise ConfigError(f"no speech recognition configured for language {language!r}")
        return engine

    def tts_for(self, language: str) -> TextToSpeech:
        engine = self.tts.get(language)
        if engine is None:
            raise ConfigError(f"no speech synthesis configured for language {language!r}")
        return engine

    async def warm_up(self) -> None:
        await asyncio.gather(*(e.warm_up() for e in {id(e): e for e in
                                                     [*self.stt.values(), *self.tts.values()]}.values()))

    async def aclose(self) -> None:
        for close in self.closers:
            result = close()
            if asyncio.iscoroutine(result):
                await result


def build_dialogue(settings: Settings) -> DialogueEngine:
    from voicedesk.dialogue.rules import RuleEngine

    if settings.dialogue_engine == "llm":
        from voicedesk.dialogue.llm import LlmDialogueEngine, LlmSettings

        if not settings.llm_base_url or not settings.llm_model:
            raise ConfigError("VOICEDESK_DIALOGUE_ENGINE=llm needs VOICEDESK_LLM_BASE_URL and VOICEDESK_LLM_MODEL")
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return LlmDialogueEngine(  # type: ignore[no-any-return]
            LlmSettings(base_url=settings.llm_base_url, model=settings.llm_model, api_key=key,
                        timeout_s=settings.llm_timeout_s),
            fallback=RuleEngine(),
        )
    return RuleEngine()


def build_engines(settings: Settings) -> Engines:
    """The offline defaults: Whisper (tiny.en / base-de), piper (en) and espeak-ng (de), Silero VAD."""
    try:
        from voicedesk.voice.models import german_whisper_dir
        from voicedesk.voice.stt.whisper import LocalWhisperSpeechToText
        from voicedesk.voice.tts.espeak import EspeakTextToSpeech
        from voicedesk.voice.tts.piper import PiperTextToSpeech
        from voicedesk.voice.vad import SileroVad
    except ImportError as exc:
        raise ConfigError(f"speech engines are not installed ({exc.name}); run `make setup` or "
                          "pip install 'voicedesk[speech]'") from None
    english = LocalWhisperSpeechToText.english()
    german = LocalWhisperSpeechToText.german(german_whisper_dir(settings.data_dir / "models"))
    piper = PiperTextToSpeech()
    espeak = EspeakTextToSpeech()
    return Engines(
        stt={"en": english, "de": german},
        tts={"en": piper, "de": espeak},
        vad_factory=SileroVad,
        dialogue=build_dialogue(settings),
        hangover_ms=settings.endpoint_hangover_ms,
        closers=[piper.aclose, espeak.aclose, english.aclose, german.aclose],
    )
