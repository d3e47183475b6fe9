"""Text clean-up before synthesis, shared by the local TTS adapters.

Engines stumble over abbreviations (``pipersynth`` crashes on "Dr." and "a.m.", piper and
espeak split sentences there and pause mid-phrase), markup from LLM replies and control
characters. ``normalize_text`` rewrites those into plain spoken words, and
``split_sentences`` cuts a reply where an engine may start a new utterance without
splitting German ordinals ("am 3. März") or times ("15.30 Uhr"). ``split_clauses`` cuts
further, at commas, semicolons, colons and dashes between words, so that a neural voice
can start speaking after synthesising a short first clause (speech.md: piper takes ~90 ms
for "Thank you for calling," and ~310 ms for the 15-word sentence it begins).
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
# A clause ends at , ; : after a word (not inside "3,5" or "10:30": no space follows the
# mark there) or at a dash between spaces, followed by space.
_CLAUSE_END = re.compile(r"(?:(?<=[^\W_][,;:])|(?<=\s[–—-]))\s+")


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


def split_clauses(text: str, *, min_words: int = 3) -> list[str]:
    """Cut normalised text into sentences, and sentences into clauses, for streamed synthesis.

    A clause of fewer than ``min_words`` words is joined to the next one ("Yes, Anna" stays
    whole), and so is a tail shorter than that, so no chunk is a lone word with a
    sentence's intonation. Numbers keep their commas and colons ("3,5", "10:30").
    """
    chunks: list[str] = []
    for sentence in split_sentences(text):
        parts = [p.strip() for p in _CLAUSE_END.split(sentence) if p.strip()]
        merged: list[str] = []
        current = ""
        for part in parts:
            current = f"{current} {part}" if current else part
            if len(current.split()) >= min_words:
                merged.append(current)
                current = ""
        if current:
            if merged and len(current.split()) < min_words:
                merged[-1] = f"{merged[-1]} {current}"
            else:
                merged.append(current)
        chunks.extend(merged)
    return chunks
