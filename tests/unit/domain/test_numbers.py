"""Spoken numbers: words to integers and digit runs to digit strings."""

from __future__ import annotations

import pytest

from voicedesk.domain.numbers import Language, fold, parse_number_word, parse_ordinal_word, words_to_digits


@pytest.mark.parametrize(
    ("word", "language", "expected"),
    [
        ("null", "de", 0), ("eins", "de", 1), ("zwo", "de", 2), ("fünf", "de", 5), ("fuenf", "de", 5),
        ("elf", "de", 11), ("zwölf", "de", 12), ("siebzehn", "de", 17), ("dreißig", "de", 30),
        ("dreiundzwanzig", "de", 23), ("einundzwanzig", "de", 21), ("hundert", "de", 100),
        ("hundertdrei", "de", 103), ("zweihundertdreiundzwanzig", "de", 223),
        ("einhundertundeins", "de", 101), ("tausend", "de", 1000), ("zweitausendsechsundzwanzig", "de", 2026),
        ("einer", "de", 1), ("eine", "de", 1), ("17", "de", 17),
        ("dritten", "de", 3), ("Erste", "de", 1), ("achten", "de", 8), ("siebte", "de", 7),
        ("zehnten", "de", 10), ("neunzehnten", "de", 19), ("zwanzigsten", "de", 20),
        ("einunddreißigsten", "de", 31), ("3.", "de", 3), ("3ten", "de", 3),
        ("Haus", "de", None), ("beste", "de", None), ("acht", "de", 8), ("undzwanzig", "de", None),
        ("dreihundertzwölfhundert", "de", None), ("nullundzwanzig", "de", None), ("", "de", None),
        ("zero", "en", 0), ("one", "en", 1), ("twelve", "en", 12), ("twenty", "en", 20),
        ("twenty-three", "en", 23), ("twenty three", "en", 23), ("one hundred and one", "en", 101),
        ("two thousand twenty six", "en", 2026), ("third", "en", 3), ("3rd", "en", 3), ("21st", "en", 21),
        ("twenty-first", "en", 21), ("twentieth", "en", 20), ("thirtieth", "en", 30),
        ("fourteenth", "en", 14), ("eleventh", "en", 11), ("hundred and first", "en", None),
        ("one hundred and first", "en", 101), ("twenty tenth", "en", None), ("oh", "en", None),
        ("one one", "en", None), ("zero one", "en", None), ("hundred", "en", None),
        ("five thousand thousand", "en", None), ("house", "en", None), ("zeroth", "en", None),
        ("fortieth", "en", 40), ("-", "en", None), ("and", "en", None), ("twentyth", "en", 20),
    ],
)
def test_parse_number_word(word: str, language: Language, expected: int | None) -> None:
    assert parse_number_word(word, language) == expected


def test_parse_ordinal_word_rejects_cardinals() -> None:
    assert parse_ordinal_word("drei", "de") is None
    assert parse_ordinal_word("three", "en") is None
    assert parse_ordinal_word("dritte", "de") == 3
    assert parse_ordinal_word("2nd", "en") == 2


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("null eins sieben eins", "de", "0171"),
        ("Meine Nummer ist null eins sieben eins, zwei drei", "de", "Meine Nummer ist 017123"),
        ("plus vier neun eins sieben eins", "de", "+49171"),
        ("doppel fünf", "de", "55"),
        ("dreimal null", "de", "000"),
        ("null eins siebzehn", "de", "0117"),
        ("0171 23 45", "de", "01712345"),
        ("ich habe eine Frage", "de", "ich habe eine Frage"),
        ("plus", "de", "plus"),
        ("eins plus", "de", "1 plus"),
        ("zero one seven one", "en", "0171"),
        ("double five", "en", "55"),
        ("triple zero", "en", "000"),
        ("oh one seven one", "en", "0171"),
        ("oh well", "en", "oh well"),
        ("twenty three", "en", "23"),
        ("twenty zero", "en", "200"),
        ("call me on + four nine", "en", "call me on +49"),
        ("double trouble", "en", "double trouble"),
        ("double 5", "en", "55"),
        ("double", "en", "double"),
        ("one. two", "en", "1. 2"),
        ("", "en", ""),
    ],
)
def test_words_to_digits(text: str, language: Language, expected: str) -> None:
    assert words_to_digits(text, language) == expected


def test_fold() -> None:
    assert fold("Fünf GRÜßE Ärger Öl") == "fuenf gruesse aerger oel"
