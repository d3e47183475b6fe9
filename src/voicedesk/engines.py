"""The speech and dialogue engines of a running instance (a composition-root concern).

``build_engines`` loads the offline engines once (STT per language, TTS per language, the
VAD factory, the dialogue engine); ``create_app(..., overrides=Engines(...))`` replaces them
(benchmarks, tests). Models are warmed up at start so the first call is not slow.

No model is loaded on the call path: ``warm_up`` loads the process's one Silero VAD model
(``SileroModel.shared``); each call's ``SileroVad`` only holds its recurrent state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voicedesk.config import Settings
from voicedesk.dialogue.engine import DialogueEngine
from voicedesk.domain.errors import ConfigError, VoicedeskError
from voicedesk.voice.ports import SpeechToText, TextToSpeech, VoiceActivityDetector
from voicedesk.voice.prompts import PromptCache

log = logging.getLogger(__name__)


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
        from voicedesk.voice.vad import SileroModel, SileroVad

        engines: list[SpeechToText | TextToSpeech] = [*self.stt.values(), *self.tts.values()]
        unique = {id(e): e for e in engines}
        warm = [e.warm_up() for e in unique.values()]
        if self.vad_factory is SileroVad:
            warm.append(_load_shared_vad_model(SileroModel))
        await asyncio.gather(*warm)

    async def aclose(self) -> None:
        for close in self.closers:
            result = close()
            if asyncio.iscoroutine(result):
                await result


async def _load_shared_vad_model(model: Any) -> None:
    await asyncio.to_thread(model.shared)  # ~40 ms of native load, off the event loop


def build_dialogue(settings: Settings) -> DialogueEngine:
    from voicedesk.dialogue.rules import RuleEngine

    if settings.dialogue_engine == "llm":
        from voicedesk.dialogue.llm import LlmEngine, LlmSettings

        if not settings.llm_base_url or not settings.llm_model:
            raise ConfigError("VOICEDESK_DIALOGUE_ENGINE=llm needs VOICEDESK_LLM_BASE_URL and VOICEDESK_LLM_MODEL")
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return LlmEngine(
            LlmSettings(base_url=settings.llm_base_url, model=settings.llm_model, api_key=key,
                        timeout_s=settings.llm_timeout_s),
            fallback=RuleEngine(),
        )
    return RuleEngine()


def _english_voice() -> tuple[TextToSpeech, Callable[[], Any] | None]:
    """piper (joe) in its own process; espeak-ng's English voice when piper is not installed."""
    from voicedesk.voice.tts.espeak import EspeakTextToSpeech

    try:
        from voicedesk.voice.tts.piper import PiperTextToSpeech
    except ImportError:
        log.warning("piper is not installed; English uses espeak-ng's voice")
        return EspeakTextToSpeech(), None
    piper = PiperTextToSpeech()
    return piper, piper.aclose


def build_engines(settings: Settings) -> Engines:
    """The offline defaults: Moonshine base or Whisper tiny.en (en, ``stt_engine_en``) / Whisper base (de),
    piper (en) and espeak-ng (de), Silero VAD."""
    try:
        from voicedesk.voice.stt.moonshine import LocalMoonshineSpeechToText
        from voicedesk.voice.stt.whisper import LocalWhisperSpeechToText
        from voicedesk.voice.tts.espeak import EspeakTextToSpeech
        from voicedesk.voice.vad import SileroVad
    except ImportError as exc:
        raise ConfigError(f"speech engines are not installed ({exc.name}); run `make setup` or "
                          "pip install 'voicedesk[speech]'") from None
    try:
        english: LocalWhisperSpeechToText | LocalMoonshineSpeechToText
        if settings.stt_engine_en == "moonshine":
            english = LocalMoonshineSpeechToText.english(settings.data_dir / "models" / "moonshine-base")
        else:
            english = LocalWhisperSpeechToText.english()
        german = LocalWhisperSpeechToText.german(settings.data_dir / "models" / "whisper-base")
    except VoicedeskError as exc:
        raise ConfigError(f"speech recognition unavailable: {exc.msg}") from None
    english_voice, close_english = _english_voice()
    closers: list[Callable[[], Any]] = [english.close, german.close]
    if close_english is not None:
        closers.append(close_english)
    return Engines(
        stt={"en": english, "de": german},
        tts={"en": english_voice, "de": EspeakTextToSpeech()},
        vad_factory=SileroVad,
        dialogue=build_dialogue(settings),
        hangover_ms=settings.endpoint_hangover_ms,
        closers=closers,
    )
