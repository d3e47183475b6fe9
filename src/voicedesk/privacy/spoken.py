"""Spoken forms of numbers, e-mail addresses and spelled codes, rewritten for PII detection.

Speech-to-text writes what a caller says: "null eins sieben eins …", "zero one seven one …",
"anna punkt müller at gmx punkt de", "D E acht neun …". The recognizers in
``voicedesk.privacy.redaction`` look for written forms (``0171…``, ``anna.müller@gmx.de``,
``DE89…``), so this module rewrites the spoken forms first and keeps, for every character of
the rewritten text, the span of the original text it came from. A finding in the rewritten
text maps back to the original characters that must be redacted.

Scope: what redaction needs, German and English — cardinals up to the millions (digit
runs concatenate the way phone numbers and IBANs are dictated: "null eins sieben eins" is
``0171``, "nineteen eighty five" is ``1985``), "doppel"/"double"/"triple", ordinals
("zwölften" → ``12.``, "twelfth" → ``12th``), "plus" before digits, spoken e-mail
separators. ``voicedesk.domain.numbers`` (the dialogue's number parser, by another
engineer) may replace the word tables here once it lands.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "Normalised",
    "normalise_spoken",
    "parse_number_word",
    "words_to_digits",
]

_DE_UNITS = {
    "null": 0, "eins": 1, "zwei": 2, "zwo": 2, "drei": 3, "vier": 4, "fünf": 5, "funf": 5,
    "sechs": 6, "sieben": 7, "acht": 8, "neun": 9,
}
_DE_COMPOUND_UNITS = {**_DE_UNITS, "ein": 1}
_DE_TEENS = {
    "zehn": 10, "elf": 11, "zwölf": 12, "dreizehn": 13, "vierzehn": 14, "fünfzehn": 15,
    "sechzehn": 16, "siebzehn": 17, "achtzehn": 18, "neunzehn": 19,
}
_DE_TENS = {
    "zwanzig": 20, "dreissig": 30, "dreißig": 30, "vierzig": 40, "fünfzig": 50, "sechzig": 60,
    "siebzig": 70, "achtzig": 80, "neunzig": 90,
}
_DE_ORDINAL_STEMS = {"er": 1, "drit": 3, "sieb": 7, "ach": 8}
_DE_ORDINAL_SUFFIXES = ("sten", "ster", "stes", "stem", "ste", "ten", "ter", "tes", "tem", "te")

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
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}
_MULTIPLIERS = {"hundert": 100, "tausend": 1000, "hundred": 100, "thousand": 1000,
                "million": 1_000_000, "millionen": 1_000_000}
_REPEATERS = {"doppel": 2, "doppelt": 2, "doppelte": 2, "double": 2, "triple": 3, "dreifach": 3}


def _fold(word: str) -> str:
    w = word.casefold().replace("ue", "ü").replace("oe", "ö")
    return w.replace("ß", "ss")


def _de_below_100(w: str) -> int | None:
    if w in _DE_UNITS:
        return _DE_UNITS[w]
    if w in _DE_TEENS:
        return _DE_TEENS[w]
    if w in _DE_TENS:
        return _DE_TENS[w]
    unit, sep, tens = w.partition("und")
    if sep and tens in _DE_TENS and unit in _DE_COMPOUND_UNITS and _DE_COMPOUND_UNITS[unit] > 0:
        return _DE_TENS[tens] + _DE_COMPOUND_UNITS[unit]
    return None


def _de_below_1000(w: str) -> int | None:
    head, sep, rest = w.partition("hundert")
    if not sep:
        return _de_below_100(w)
    factor = 1 if head == "" else _DE_COMPOUND_UNITS.get(head, _de_below_100(head) or 0)
    if factor == 0:
        return None
    if rest == "":
        return factor * 100
    rest = rest.removeprefix("und")
    low = _de_below_100(rest)
    return None if low is None else factor * 100 + low


def _de_cardinal(w: str) -> int | None:
    head, sep, rest = w.partition("tausend")
    if not sep:
        return _de_below_1000(w)
    factor = 1 if head == "" else _DE_COMPOUND_UNITS.get(head, _de_below_1000(head) or 0)
    if factor == 0:
        return None
    if rest == "":
        return factor * 1000
    low = _de_below_1000(rest.removeprefix("und"))
    return None if low is None else factor * 1000 + low


def _de_ordinal(w: str) -> int | None:
    for suffix in _DE_ORDINAL_SUFFIXES:
        if w.endswith(suffix) and len(w) > len(suffix):
            stem = w[: -len(suffix)]
            if stem in _DE_ORDINAL_STEMS:
                return _DE_ORDINAL_STEMS[stem]
            value = _de_cardinal(stem)
            if value is not None and value > 0:
                return value
    return None


def _en_cardinal(w: str) -> int | None:
    if w in _EN_UNITS:
        return _EN_UNITS[w]
    if w in _EN_TEENS:
        return _EN_TEENS[w]
    if w in _EN_TENS:
        return _EN_TENS[w]
    tens, sep, unit = w.partition("-")
    if sep and tens in _EN_TENS and unit in _EN_UNITS and _EN_UNITS[unit] > 0:
        return _EN_TENS[tens] + _EN_UNITS[unit]
    return None


def _en_ordinal(w: str) -> int | None:
    if w in _EN_ORDINALS:
        return _EN_ORDINALS[w]
    tens, sep, unit = w.partition("-")
    if sep and tens in _EN_TENS and unit in _EN_ORDINALS and _EN_ORDINALS[unit] < 10:
        return _EN_TENS[tens] + _EN_ORDINALS[unit]
    if w.endswith("ieth") and w[:-4] + "y" in _EN_TENS:
        return _EN_TENS[w[:-4] + "y"]
    return None


def parse_number_word(word: str, language: str) -> int | None:
    """Return the cardinal value of one spoken number word, or ``None``.

    German compounds are one word ("dreiundzwanzig", "neunzehnhundertfünfundachtzig");
    English compounds are hyphenated ("twenty-three"). Multipliers ("hundert", "thousand")
    on their own parse to their value. Ordinals are not cardinals and give ``None``.
    """
    w = _fold(word)
    if w in _MULTIPLIERS:
        return _MULTIPLIERS[w]
    if language == "de":
        return _de_cardinal(w)
    return _en_cardinal(w)


def _parse_ordinal(word: str, language: str) -> int | None:
    w = _fold(word)
    return _de_ordinal(w) if language == "de" else _en_ordinal(w)


@dataclass(frozen=True)
class Normalised:
    """Rewritten text with, per character, the original span ``[starts[i], ends[i])``."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    @classmethod
    def identity(cls, text: str) -> Normalised:
        return cls(text, tuple(range(len(text))), tuple(range(1, len(text) + 1)))

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map the span ``[start, end)`` of ``text`` to the original text."""
        if not 0 <= start < end <= len(self.text):
            raise ValueError(f"span [{start}, {end}) is outside the rewritten text")
        return self.starts[start], self.ends[end - 1]

    def rewrite(self, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str | None]) -> Normalised:
        """Replace each match by ``replace(match)`` (``None`` keeps it); replaced characters
        map to the original span of the whole match."""
        text: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        pos = 0
        for m in pattern.finditer(self.text):
            new = replace(m)
            if new is None or new == m.group(0) or m.start() == m.end():
                continue
            text.append(self.text[pos : m.start()])
            starts.extend(self.starts[pos : m.start()])
            ends.extend(self.ends[pos : m.start()])
            o_start, o_end = self.starts[m.start()], self.ends[m.end() - 1]
            text.append(new)
            starts.extend([o_start] * len(new))
            ends.extend([o_end] * len(new))
            pos = m.end()
        if pos == 0:
            return self
        text.append(self.text[pos:])
        starts.extend(self.starts[pos:])
        ends.extend(self.ends[pos:])
        return Normalised("".join(text), tuple(starts), tuple(ends))


# --- number words -------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+(?:-[^\W\d_]+)*")


@dataclass
class _Chunk:
    """One spoken number being assembled: ``high`` (after a multiplier) plus ``low``."""

    high: int = 0
    low: int = 0
    state: str = "empty"  # empty | unit | tens | full | mult

    def value(self) -> int:
        return self.high + self.low


class _DigitRun:
    """Concatenates the numbers of one run the way digit strings are dictated."""

    def __init__(self) -> None:
        self.out: list[str] = []
        self.chunk = _Chunk()
        self.repeat = 1

    def _emit(self) -> None:
        if self.chunk.state != "empty":
            self.out.append(str(self.chunk.value()) * self.repeat)
            self.repeat = 1
        self.chunk = _Chunk()

    def add_literal(self, digits: str) -> None:
        self._emit()
        self.out.append(digits)

    def add_repeat(self, times: int) -> None:
        self._emit()
        self.repeat = times

    def add(self, value: int) -> None:
        c = self.chunk
        if value in (100, 1000, 1_000_000):
            if c.state in ("unit", "tens", "full") and value > c.low:
                if value == 100:
                    c.low *= 100
                    c.state = "mult"
                else:
                    c.high = (c.high + c.low) * value
                    c.low = 0
                    c.state = "mult"
                return
            if c.state == "mult" and value > c.value():
                c.high, c.low, c.state = c.value() * value, 0, "mult"
                return
            self._emit()
            self.chunk = _Chunk(high=value, state="mult")
            return
        if c.state == "tens" and 0 < value < 10:
            c.low += value
            c.state = "full"
            return
        if c.state == "mult" and value < 100 and (c.low % 100 == 0):
            c.low += value
            c.state = "tens" if value >= 20 and value % 10 == 0 else "full"
            return
        self._emit()
        if self.repeat > 1 and value >= 10:
            self.repeat = 1
        kind = "unit" if value < 10 else "tens" if value % 10 == 0 and value < 100 else "full"
        if value >= 100 and value % 100 == 0:
            kind = "mult"
        self.chunk = _Chunk(low=value, state=kind)

    def text(self) -> str:
        self._emit()
        return "".join(self.out)


def _token_value(word: str, language: str) -> int | None:
    w = _fold(word)
    if language == "de" and w in ("ein", "eine", "einen", "einer"):
        return None
    return parse_number_word(word, language)


def _convert_numbers(norm: Normalised, language: str) -> Normalised:
    text = norm.text
    tokens = [(m.start(), m.end(), m.group(0)) for m in _WORD.finditer(text)]
    out: list[tuple[int, int, str]] = []  # replacements in rewritten coordinates
    i = 0
    n = len(tokens)

    def is_number(k: int) -> bool:
        word = tokens[k][2]
        w = _fold(word)
        if word.isdigit() or w in _REPEATERS:
            return True
        if language == "en" and w in ("oh", "o"):
            return _neighbour_is_number(k)
        return _token_value(word, language) is not None

    def _neighbour_is_number(k: int) -> bool:
        for j in (k - 1, k + 1):
            if 0 <= j < n and _joined(min(j, k)):
                word = tokens[j][2]
                if word.isdigit() or _fold(word) in _REPEATERS or _token_value(word, language) is not None:
                    return True
        return False

    def _joined(k: int) -> bool:
        """True if token k and k+1 are separated by whitespace (or "and") only."""
        gap = text[tokens[k][1] : tokens[k + 1][0]]
        return gap.strip() == ""

    while i < n:
        if not is_number(i):
            ordinal = _parse_ordinal(tokens[i][2], language)
            if ordinal is not None and _ordinal_allowed(tokens, i, text, language):
                suffix = "." if language == "de" else _en_suffix(ordinal)
                out.append((tokens[i][0], tokens[i][1], f"{ordinal}{suffix}"))
            i += 1
            continue
        j = i
        while j + 1 < n and _joined(j):
            if is_number(j + 1):
                j += 1
            elif (
                _fold(tokens[j + 1][2]) in ("and", "und")
                and j + 2 < n
                and _joined(j + 1)
                and is_number(j + 2)
                and not tokens[j + 2][2].isdigit()
                and _fold(tokens[j][2]) in _MULTIPLIERS
            ):
                j += 2
            else:
                break
        run = tokens[i : j + 1]
        if any(not word.isdigit() for _, _, word in run) and not all(
            _fold(w) in _REPEATERS for _, _, w in run
        ):
            digits = _DigitRun()
            for _, _, word in run:
                w = _fold(word)
                if word.isdigit():
                    digits.add_literal(word)
                elif w in _REPEATERS:
                    digits.add_repeat(_REPEATERS[w])
                elif w in ("and", "und"):
                    continue
                elif language == "en" and w in ("oh", "o"):
                    digits.add(0)
                else:
                    value = _token_value(word, language)
                    if value is not None:
                        digits.add(value)
            out.append((run[0][0], run[-1][1], digits.text()))
        i = j + 1

    if not out:
        return norm
    return _apply_offsets(norm, {start: (end, new) for start, end, new in out})


def _apply_offsets(norm: Normalised, replacements: dict[int, tuple[int, str]]) -> Normalised:
    text: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for start in sorted(replacements):
        end, new = replacements[start]
        text.append(norm.text[pos:start])
        starts.extend(norm.starts[pos:start])
        ends.extend(norm.ends[pos:start])
        o_start, o_end = norm.starts[start], norm.ends[end - 1]
        text.append(new)
        starts.extend([o_start] * len(new))
        ends.extend([o_end] * len(new))
        pos = end
    text.append(norm.text[pos:])
    starts.extend(norm.starts[pos:])
    ends.extend(norm.ends[pos:])
    return Normalised("".join(text), tuple(starts), tuple(ends))


_EN_MONTHS = frozenset(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september",
     "october", "november", "december")
)


def _ordinal_allowed(tokens: Sequence[tuple[int, int, str]], i: int, text: str, language: str) -> bool:
    if language == "de":
        return True
    before = _fold(tokens[i - 1][2]) if i > 0 else ""
    after = _fold(tokens[i + 1][2]) if i + 1 < len(tokens) else ""
    return before in ("the", "on") or after == "of" or after in _EN_MONTHS or before in _EN_MONTHS


def _en_suffix(value: int) -> str:
    if value % 100 in (11, 12, 13):
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(value % 10, "th")


# --- e-mail addresses, "plus", spelled letters before digits -------------------------

_SEP_WORDS = r"punkt|dot|minus|bindestrich|strich|dash|hyphen|unterstrich|underscore"
_SEP = rf"(?:\s*[._-]\s*|\s+(?:{_SEP_WORDS})\s+)"
_DOT = r"(?:\s*\.\s*|\s+(?:punkt|dot)\s+)"
_LABEL = r"[^\W_]+"
# A local part may be said as two words ("harris garage at …", "k singh at …"); the first
# word must not be one that introduces the address.
_INTRO = r"(?:is|ist|at|to|an|the|me|mail|email|e-mail|adresse|address|lautet|unter|von|from|my|meine?)"
_LOCAL_LABEL = rf"(?!{_INTRO}\b)[^\W_]+(?:['’][^\W_]+)?(?:\s\d+)*(?:\s(?!{_INTRO}\b)[^\W\d_]+(?=\s*(?:@|at\b|ät\b)))?"
_DOMAIN_LABEL = r"[^\W_]+(?:\s(?!(?:dot|punkt)\b)[^\W\d_]+(?=\s+(?:dot|punkt)\b))?"
_SPELLED = r"[^\W\d_](?:\s[^\W\d_]){2,}"
_AT = r"(?:\s*@\s*|\s+(?:at|ät|klammeraffe|at-zeichen)\s+)"
_SPOKEN_EMAIL = re.compile(
    rf"(?<![\w.@-])(?P<local>(?:{_SPELLED}|{_LOCAL_LABEL})(?:{_SEP}(?:{_SPELLED}|{_LOCAL_LABEL}))*)"
    rf"{_AT}(?P<domain>{_DOMAIN_LABEL}(?:{_SEP}{_DOMAIN_LABEL})*{_DOT}(?P<tld>[^\W\d_]{{2,12}}))(?![\w@])",
    re.IGNORECASE,
)
_SEP_MAP = {"punkt": ".", "dot": ".", "minus": "-", "bindestrich": "-", "strich": "-", "dash": "-",
            "hyphen": "-", "unterstrich": "_", "underscore": "_"}
_SEP_TOKEN = re.compile(rf"\s*([._-])\s*|\s+({_SEP_WORDS})\s+", re.IGNORECASE)


def _compact_email(m: re.Match[str]) -> str | None:
    def compact(part: str) -> str:
        part = _SEP_TOKEN.sub(lambda s: s.group(1) or _SEP_MAP[s.group(2).casefold()], part)
        return re.sub(r"\s+", "", part)

    return f"{compact(m.group('local'))}@{compact(m.group('domain'))}"


_PLUS = re.compile(r"(?<![\w+])plus\s+(?=\d)", re.IGNORECASE)
_DIGIT_JOINER = re.compile(
    r"(?:(?<=\d)|(?<=\b[A-Za-z])),?\s+(?P<word>strich|bindestrich|minus|dash|hyphen|schrägstrich|slash)\s*,?\s+(?=\d)",
    re.IGNORECASE,
)


def _joiner(m: re.Match[str]) -> str:
    return "/" if m.group("word").casefold() in ("schrägstrich", "slash") else "-"



def normalise_spoken(text: str, language: str) -> Normalised:
    """Rewrite spoken numbers, "plus" and spoken e-mail addresses in ``text``.

    ``language`` is ``"de"`` or ``"en"``; it selects the number words. E-mail separators
    of both languages are understood in either, as callers mix them ("at", "punkt").
    """
    norm = Normalised.identity(text)
    norm = _convert_numbers(norm, language)
    norm = norm.rewrite(_PLUS, lambda m: "+")
    norm = norm.rewrite(_DIGIT_JOINER, _joiner)
    return norm.rewrite(_SPOKEN_EMAIL, _compact_email)


def words_to_digits(text: str, language: str) -> str:
    """Return ``text`` with spoken numbers written as digits (no offset bookkeeping)."""
    return _convert_numbers(Normalised.identity(text), language).text
