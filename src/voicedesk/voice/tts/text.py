"""Text clean-up before synthesis, shared by the local TTS adapters.

Engines stumble over abbreviations (``pipersynth`` crashes on "Dr." and "a.m.", piper and
espeak split sentences there and pause mid-phrase), markup from LLM replies and control
characters. ``normalize_text`` rewrites those into plain spoken words, and
``split_sentences`` cuts a reply where an engine may start a new utterance without
splitting German ordinals ("am 3. März") or times ("15.30 Uhr").
"""

from __future__ import annotations

import re

_ABBREVIATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (
        (r"\bDr\.", "Doctor"), (r"\bMr\.", "Mister"), (r"\bMrs\.", "Missus"), (r"\bMs\.", "Miz"),
        (r"\bProf\.", "Professor"), (r"\be\.\s?g\.", "for example"), (r"\bi\.\s?e\.", "that is"),
        (r"\betc\.", "et cetera"), (r"\bvs\.", "versus"), (r"\bapprox\.", "approximately"),
        (r"\bNo\.(?=\s*\d)", "number"), (r"\btel\.", "phone"), (r"\bTel\.", "Phone"),
        (r"\b([aApP])\.\s?[mM]\.", r"\1 m"),
        (r"&", " and "),
    ),
    "de": (
        (r"\bDr\.", "Doktor"), (r"\bProf\.", "Professor"), (r"\bHr\.", "Herr"),
        (r"\bNr\.", "Nummer"), (r"\bStr\.", "Straße"), (r"\bz\.\s?B\.", "zum Beispiel"),
        (r"\bu\.\s?a\.", "unter anderem"), (r"\bbzw\.", "beziehungsweise"), (r"\bca\.", "circa"),
        (r"\busw\.", "und so weiter"), (r"\bd\.\s?h\.", "das heißt"), (r"\bggf\.", "gegebenenfalls"),
        (r"\binkl\.", "inklusive"), (r"\bevtl\.", "eventuell"), (r"\bTel\.", "Telefon"),
        (r"\bu\.\s?U\.", "unter Umständen"), (r"\bz\.\s?Zt\.", "zur Zeit"),
        (r"&", " und "),
    ),
}
_COMPILED = {lang: tuple((re.compile(p), r) for p, r in rules) for lang, rules in _ABBREVIATIONS.items()}
_MARKUP = re.compile(r"[*_#`~|<>\[\]{}\\]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_SPACES = re.compile(r"\s+")
# A sentence ends at . ! ? … followed by space and an upper-case letter, unless the dot
# follows a number (German ordinals and dates: "am 3. März").
_SENTENCE_END = re.compile(r"(?<!\d\.)(?<=[.!?…])\s+(?=[A-ZÄÖÜ\"'„])")


def normalize_text(text: str, language: str) -> str:
    """Plain, single-line, speakable text: abbreviations spelt out, markup and controls gone."""
    text = _CONTROL.sub(" ", text)
    text = _MARKUP.sub(" ", text)
    for pattern, repl in _COMPILED.get(language, ()):
        text = pattern.sub(repl, text)
    return _SPACES.sub(" ", text).strip()


def split_sentences(text: str) -> list[str]:
    """Cut normalised text into sentences (non-empty, stripped)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
