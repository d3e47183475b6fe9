"""Spoken numbers in German and English: number words to integers, digit runs to digits.

Speech-to-text writes what callers say, and callers say numbers as words: "dreiundzwanzig",
"am dritten", "twenty-third", "null eins sieben eins …", "double five". This module turns
them into integers (``parse_number_word``) or, for phone numbers and codes, into digit
strings (``words_to_digits``). It knows nothing about dates or phone numbers; ``when`` and
the dialogue build on it.

Text is compared after ``fold``: lower case, umlauts as ``ae``/``oe``/``ue``, ``ß`` as
``ss``, so "fünf", "fuenf" and "FÜNF" are the same word.
"""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["de", "en"]

_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})

_DE_UNITS = {
    "null": 0, "eins": 1, "zwei": 2, "zwo": 2, "drei": 3, "vier": 4, "fuenf": 5, "sechs": 6,
    "sieben": 7, "acht": 8, "neun": 9,
}
# Inflected forms of "ein" are numbers on their own ("in einer Woche") but not digits.
_DE_ARTICLE_ONE = {"ein": 1, "eine": 1, "einen": 1, "einer": 1, "einem": 1, "eines": 1}
_DE_TEENS = {
    "zehn": 10, "elf": 11, "zwoelf": 12, "dreizehn": 13, "vierzehn": 14, "fuenfzehn": 15,
    "sechzehn": 16, "siebzehn": 17, "achtzehn": 18, "neunzehn": 19,
}
_DE_TENS = {
    "zwanzig": 20, "dreissig": 30, "vierzig": 40, "fuenfzig": 50, "sechzig": 60, "siebzig": 70,
    "achtzig": 80, "neunzig": 90,
}
_DE_ORDINAL_STEMS = {
    "erst": 1, "zweit": 2, "dritt": 3, "viert": 4, "fuenft": 5, "sechst": 6, "siebt": 7,
    "siebent": 7, "acht": 8, "neunt": 9, "zehnt": 10, "elft": 11, "zwoelft": 12,
}
_DE_ORDINAL_ENDINGS = ("en", "er", "es", "em", "e")

_EN_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9,
}
_EN_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_EN_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}
_EN_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
}

_DIGITS = re.compile(r"^\d+$")
_NUMERAL_ORDINAL = {
    "de": re.compile(r"^(\d+)(?:\.|te[nrsm]?|ste[nrsm]?)$"),
    "en": re.compile(r"^(\d+)(?:st|nd|rd|th)$"),
}
_EN_SPLIT = re.compile(r"[\s-]+")

_REPEAT = {
    "de": {"doppel": 2, "doppelt": 2, "doppelte": 2, "zweimal": 2, "dreimal": 3, "dreifach": 3},
    "en": {"double": 2, "triple": 3, "treble": 3},
}
_ZERO_IN_RUN = {"de": frozenset[str](), "en": frozenset({"oh", "o"})}
_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*|\+")


def fold(text: str) -> str:
    """Lower-case ``text`` and spell umlauts and ß in ASCII (``"Fünf"`` → ``"fuenf"``)."""
    return text.lower().translate(_FOLD)


def parse_number_word(word: str, language: Language) -> int | None:
    """The value of a cardinal or ordinal number written as digits or words, else ``None``.

    ``"dreiundzwanzig"`` → 23, ``"dritten"`` → 3, ``"3."`` → 3 (German), ``"twenty-three"``
    and ``"twenty three"`` → 23, ``"third"``/``"3rd"`` → 3, ``"17"`` → 17. Inflected German
    articles count as one (``"einer"`` → 1). Words that are not numbers give ``None``.
    """
    w = fold(word.strip())
    if _DIGITS.match(w):
        return int(w)
    value = parse_ordinal_word(w, language)
    if value is not None:
        return value
    if language == "de":
        return _DE_ARTICLE_ONE.get(w, _de_cardinal(w))
    return _en_cardinal(w)


def parse_ordinal_word(word: str, language: Language) -> int | None:
    """The value of an ordinal only (``"dritten"``, ``"3."``, ``"third"``, ``"3rd"``), else ``None``."""
    w = fold(word.strip())
    m = _NUMERAL_ORDINAL[language].match(w)
    if m:
        return int(m.group(1))
    if language == "de":
        return _de_ordinal(w)
    return _en_ordinal(w)


def words_to_digits(text: str, language: Language) -> str:
    """Replace each run of spoken digits in ``text`` by the digits, joined without spaces.

    ``"null eins sieben eins"`` → ``"0171"``, ``"zero one seven one"`` → ``"0171"``,
    ``"double five"`` → ``"55"``, ``"plus vier neun"`` → ``"+49"``,
    ``"meine Nummer ist null eins"`` → ``"meine Nummer ist 01"``. Tens and compounds keep
    their value (``"dreiundzwanzig"`` → ``"23"``, English ``"twenty three"`` → ``"23"``).
    Words around the runs are kept as written.
    """
    tokens = list(_WORD.finditer(text))
    out: list[str] = []
    last = 0
    i = 0
    while i < len(tokens):
        run_end, digits = _digit_run(tokens, i, text, language)
        if run_end == i:
            i += 1
            continue
        out.append(text[last : tokens[i].start()])
        out.append(digits)
        last = tokens[run_end - 1].end()
        i = run_end
    out.append(text[last:])
    return "".join(out)


def _digit_run(tokens: list[re.Match[str]], i: int, text: str, language: Language) -> tuple[int, str]:
    """Consume a run of digit words starting at ``tokens[i]``; return (end index, digits)."""
    parts: list[str] = []
    spoken = 0  # real digit words in the run, so a lone "oh" or "plus" stays a word
    j = i
    while j < len(tokens):
        if j > i and text[tokens[j - 1].end() : tokens[j].start()].strip(" ,"):
            break
        word = fold(tokens[j].group())
        repeat = _REPEAT[language].get(word)
        if repeat is not None and j + 1 < len(tokens):
            nxt = _digit_value(fold(tokens[j + 1].group()), language)
            if nxt is not None and text[tokens[j].end() : tokens[j + 1].start()].strip() == "":
                parts.append(str(nxt) * repeat)
                spoken += 1
                j += 2
                continue
        if word == "+" or word == "plus":
            if parts or j + 1 >= len(tokens) or _digit_value(fold(tokens[j + 1].group()), language) is None:
                break
            parts.append("+")
            j += 1
            continue
        if word in _ZERO_IN_RUN[language]:
            parts.append("0")
            j += 1
            continue
        if _DIGITS.match(word):
            parts.append(word)  # keeps leading zeros
            spoken += 1
            j += 1
            continue
        value = _digit_value(word, language)
        if value is None:
            break
        if (
            language == "en"
            and value in _EN_TENS.values()
            and j + 1 < len(tokens)
            and fold(tokens[j + 1].group()) in _EN_UNITS
            and _EN_UNITS[fold(tokens[j + 1].group())] > 0
            and text[tokens[j].end() : tokens[j + 1].start()].strip() == ""
        ):
            value += _EN_UNITS[fold(tokens[j + 1].group())]
            j += 1
        parts.append(str(value))
        spoken += 1
        j += 1
    if spoken == 0:
        return i, ""
    return j, "".join(parts)


def _digit_value(word: str, language: Language) -> int | None:
    if _DIGITS.match(word):
        return int(word)
    if language == "de":
        return _de_cardinal(word)
    return _en_cardinal(word)


def _de_cardinal(w: str) -> int | None:
    if not w:
        return None
    for table in (_DE_UNITS, _DE_TEENS, _DE_TENS):
        if w in table:
            return table[w]
    for word, factor, limit in (("tausend", 1000, 1000), ("hundert", 100, 10)):
        if word in w:
            left, _, right = w.partition(word)
            high = 1 if left in ("", "ein") else _de_cardinal(left)
            right = right.removeprefix("und")
            low = 0 if right == "" else _de_cardinal(right)
            if high is None or low is None or not 0 < high < limit or low >= factor:
                return None
            return high * factor + low
    if "und" in w:
        unit, _, tens = w.partition("und")
        u = 1 if unit == "ein" else _DE_UNITS.get(unit)
        t = _DE_TENS.get(tens)
        if u is None or t is None or u == 0:
            return None
        return t + u
    return None


def _de_ordinal(w: str) -> int | None:
    for ending in _DE_ORDINAL_ENDINGS:
        if not w.endswith(ending):
            continue
        stem = w[: -len(ending)]
        if stem in _DE_ORDINAL_STEMS:
            return _DE_ORDINAL_STEMS[stem]
        if stem.endswith("zehnt"):
            return _de_cardinal(stem[:-1])
        if stem.endswith("st"):
            return _de_cardinal(stem[:-2])
    return None


def _en_cardinal(w: str) -> int | None:
    words = [p for p in _EN_SPLIT.split(w) if p and p != "and"]
    if not words:
        return None
    total = 0
    current = 0
    for part in words:
        if part in _EN_UNITS and current % 10 == 0 and (current % 100 == 0 or current % 100 >= 20):
            if part == "zero" and (current or total or len(words) > 1):
                return None
            current += _EN_UNITS[part]
        elif part in _EN_TEENS and current % 100 == 0:
            current += _EN_TEENS[part]
        elif part in _EN_TENS and current % 100 == 0:
            current += _EN_TENS[part]
        elif part == "hundred" and 0 < current < 10:
            current *= 100
        elif part == "thousand" and 0 < current < 1000:
            total += current * 1000
            current = 0
        else:
            return None
    return total + current


def _en_ordinal(w: str) -> int | None:
    words = [p for p in _EN_SPLIT.split(w) if p and p != "and"]
    if not words:
        return None
    last = words[-1]
    if last in _EN_ORDINALS:
        value = _EN_ORDINALS[last]
    elif last.endswith("ieth"):
        value = _EN_TENS.get(last[:-4] + "y", -1)
    elif last.endswith("th"):
        value = _en_cardinal(last[:-2]) or -1
    else:
        return None
    if value < 0:
        return None
    if len(words) == 1:
        return value
    head = _en_cardinal(" ".join(words[:-1]))
    if not head or value >= (10 if head % 100 else 100):
        return None
    return head + value
