"""Text normalisation and sentence splitting before synthesis."""

from __future__ import annotations

import pytest

from voicedesk.voice.tts.text import normalize_text, split_sentences


@pytest.mark.parametrize(("text", "language", "expected"), [
    ("Dr. Miller sees you at 9 a.m., not 3 P.M.", "en", "Doctor Miller sees you at 9 a m, not 3 P m"),
    ("Mr. & Mrs. Smith, e.g. on Friday, etc.", "en", "Mister and Missus Smith, for example on Friday, et cetera"),
    ("Room No. 5", "en", "Room number 5"),
    ("Dr. Weber, z. B. Str. 5, Nr. 3 bzw. ca. 10 Min.", "de",
     "Doktor Weber, zum Beispiel Straße 5, Nummer 3 beziehungsweise circa 10 Min."),
    ("**Termin:** am `Montag`\n\n# ok", "de", "Termin: am Montag ok"),
    ("a\x00b\tc", "en", "a b c"),
])
def test_normalize_text(text: str, language: str, expected: str) -> None:
    assert normalize_text(text, language) == expected


def test_normalize_unknown_language_still_cleans_markup() -> None:
    assert normalize_text("*Bonjour*  Dr. X", "fr") == "Bonjour Dr. X"


@pytest.mark.parametrize(("text", "expected"), [
    ("Hello. How are you? Fine!", ["Hello.", "How are you?", "Fine!"]),
    ("Ihr Termin ist am 3. März um 15.30 Uhr. Danke.", ["Ihr Termin ist am 3. März um 15.30 Uhr.", "Danke."]),
    ("Is that ok? yes it is.", ["Is that ok? yes it is."]),
    ("", []),
])
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected
