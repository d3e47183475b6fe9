"""Engines for web-level call tests: the real rule dialogue, tone-keyed fake speech.

The caller "speaks" a tone whose frequency the fake STT maps to a phrase; the assistant's
speech is a tone whose length follows the text. Everything else — webhooks, media stream,
consent gate, rule engine, database — is real.
"""

from __future__ import annotations

from tests.support.fakes_voice import FakeClock, FakeSpeechToText, FakeTextToSpeech, FakeVad
from voicedesk.dialogue.rules import RuleEngine
from voicedesk.engines import Engines


def tone_engines(phrases: dict[int, str], *, ms_per_char: int = 2) -> Engines:
    clock = FakeClock()
    stt = FakeSpeechToText(phrases, clock)
    tts = FakeTextToSpeech(clock, ms_per_char=ms_per_char)
    return Engines(stt={"de": stt, "en": stt}, tts={"de": tts, "en": tts}, vad_factory=FakeVad,
                   dialogue=RuleEngine(), hangover_ms=300)
