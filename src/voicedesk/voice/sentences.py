"""Text helpers for speaking: sentence splitting for streamed TTS, backchannel detection."""

from __future__ import annotations

import re

from voicedesk.domain.consent import normalize

_ABBREVIATIONS = frozenset({
    "dr", "prof", "hr", "fr", "nr", "str", "ca", "bzw", "usw", "vgl", "z", "b", "d", "h", "u", "a",
    "evtl", "inkl", "zzgl", "tel", "mr", "mrs", "ms", "st", "e", "g", "i", "etc", "vs", "no", "approx",
})
_BOUNDARY = re.compile(r"(?<=[.!?…])[\"'»«”]?\s+")
_LAST_WORD = re.compile(r"([\w]+)[.!?…]?[\"'»«”]?$")

_BACKCHANNELS = frozenset({
    "mhm", "mm", "mmh", "hm", "hmm", "aha", "ah", "ja", "jaja", "ja ja", "jo", "genau", "okay", "ok",
    "alles klar", "klar", "gut", "stimmt", "richtig", "achso", "ach so", "uh huh", "uh-huh", "uhhuh",
    "uh", "um", "yeah", "yes", "yep", "right", "sure", "i see", "got it", "mhmm", "mm hmm", "mm-hmm",
})


def split_sentences(text: str) -> list[str]:
    """Split a reply into sentences to synthesise one by one.

    Does not split after abbreviations ("Dr.", "z.B.") or numbers ("am 3. Mai").
    """
    parts: list[str] = []
    current = ""
    for piece in _BOUNDARY.split(text.strip()):
        if not piece:
            continue
        current = f"{current} {piece}" if current else piece
        m = _LAST_WORD.search(current)
        last = m.group(1) if m else ""
        if current.endswith(".") and (last.lower() in _ABBREVIATIONS or last.isdigit()):
            continue
        parts.append(current)
        current = ""
    if current:
        parts.append(current)
    return parts


def is_backchannel(text: str) -> bool:
    """True for listener noises like "mhm", "ja", "okay", "uh-huh" that carry no request."""
    norm = normalize(text)
    if not norm:
        return True
    if norm in _BACKCHANNELS:
        return True
    words = norm.split()
    return len(words) <= 3 and all(w in _BACKCHANNELS for w in words)
