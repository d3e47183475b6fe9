"""PII redaction of call transcripts, German and English (R-7.3).

``Redactor.redact(text, language, contact=...)`` returns the text with each finding
replaced by a typed placeholder (``[PHONE]``, ``[EMAIL]``, ``[IBAN]``, ``[NAME]``,
``[ADDRESS]``, ``[POSTCODE]``, ``[DOB]``, ``[CUSTOMER_ID]``) and the spans found, as
offsets into the original text (the spans carry no copy of the personal data, so they can
be logged or counted safely).

How it works:

1. ``voicedesk.privacy.spoken`` rewrites spoken forms ("null eins sieben eins …",
   "anna punkt müller at gmx punkt de", "D E acht neun …") into written ones and keeps a
   character map back to the original text.
2. A Presidio ``AnalyzerEngine`` runs pattern recognizers over the rewritten text: Presidio's
   own phone (``phonenumbers``) and e-mail recognizers, and the recognizers below for IBANs
   (mod-97 checksum), addresses, postcodes, dates of birth, customer numbers and names
   (the call's own contact data, a shipped name list and name cues such as "mein Name ist").
   No spaCy model is loaded: the engine uses Presidio's ``NoOpNlpEngine``. ``tldextract``
   (the e-mail recognizer's domain check) reads only its bundled public-suffix snapshot.
3. Findings are mapped back to the original text; where they overlap, the more specific
   type wins (IBAN > e-mail > customer number > date of birth > phone > address > postcode
   > name).

Nothing here touches the network or the disk after construction; the analyzer is built
once (``Redactor()`` takes about a second) and is safe to share between threads.
"""

from __future__ import annotations

import enum
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import tldextract
from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    LocalRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import NlpArtifacts, NoOpNlpEngine
from presidio_analyzer.predefined_recognizers import EmailRecognizer, PhoneRecognizer
from typing_extensions import override

from voicedesk.domain.errors import InvalidInputError
from voicedesk.privacy.spoken import Normalised, normalise_spoken

__all__ = [
    "ContactData",
    "PiiSpan",
    "PiiType",
    "Redaction",
    "Redactor",
    "default_redactor",
    "iban_is_valid",
    "redact",
]

Language = Literal["de", "en"]
LANGUAGES: tuple[Language, ...] = ("de", "en")


class PiiType(enum.StrEnum):
    """The kinds of personal data the redactor finds; the value is the placeholder label."""

    PHONE = "PHONE"
    EMAIL = "EMAIL"
    IBAN = "IBAN"
    NAME = "NAME"
    ADDRESS = "ADDRESS"
    POSTCODE = "POSTCODE"
    DOB = "DOB"
    CUSTOMER_ID = "CUSTOMER_ID"

    @property
    def placeholder(self) -> str:
        return f"[{self.value}]"


# Where findings overlap, the earlier type wins.
_PRIORITY: tuple[PiiType, ...] = (
    PiiType.IBAN, PiiType.EMAIL, PiiType.CUSTOMER_ID, PiiType.DOB, PiiType.PHONE,
    PiiType.ADDRESS, PiiType.POSTCODE, PiiType.NAME,
)
_RANK = {t: i for i, t in enumerate(_PRIORITY)}


@dataclass(frozen=True)
class PiiSpan:
    """One finding: ``[start, end)`` in the original text. Holds no copy of the data."""

    type: PiiType
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Redaction:
    """The redacted text and the spans (in the original text) that were replaced."""

    text: str
    spans: tuple[PiiSpan, ...]


@dataclass(frozen=True)
class ContactData:
    """What the call already knows about the caller; found in the transcript in any form.

    Names are matched word by word (a contact "Anna Kowalczyk" redacts "Kowalczyk" alone
    too), phone numbers by their last digits whatever the separators, the rest verbatim
    and case-insensitively.
    """

    names: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    customer_ids: tuple[str, ...] = ()


# --- recognizers ---------------------------------------------------------------------

Validator = Callable[[str], bool]


class _RegexRecognizer(LocalRecognizer):
    """Reports the ``pii`` group (or the whole match) of each regex match as ``entity``."""

    def __init__(
        self,
        entity: PiiType,
        patterns: Sequence[re.Pattern[str]],
        *,
        language: str,
        score: float = 0.85,
        validate: Validator | None = None,
        name: str | None = None,
    ) -> None:
        self._patterns = tuple(patterns)
        self._score = score
        self._validate = validate
        self._entity = entity
        super().__init__(
            supported_entities=[entity.value], supported_language=language,
            name=name or f"voicedesk_{entity.value.lower()}_{language}",
        )

    @override
    def load(self) -> None:
        pass

    @override
    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
                ) -> list[RecognizerResult]:
        results: list[RecognizerResult] = []
        for pattern in self._patterns:
            for m in pattern.finditer(text):
                group = "pii" if "pii" in pattern.groupindex else 0
                start, end = m.span(group)
                if start < 0 or start == end:
                    continue
                if self._validate is not None and not self._validate(text[start:end]):
                    continue
                results.append(RecognizerResult(self._entity.value, start, end, self._score))
        return results


# IBAN lengths of the SEPA countries (ISO 13616 registry).
_IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23, "GR": 27, "HR": 21, "HU": 28,
    "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31,
    "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "TR": 26, "VA": 22,
}
_IBAN_CANDIDATE = re.compile(
    r"(?<![^\W_])([a-z])[ ]?([a-z])[ ]?(\d)(?:,?[ ])?(\d)((?:(?:,?[ ]|-)?[a-z0-9]){10,34})", re.IGNORECASE
)


def iban_is_valid(compact: str) -> bool:
    """Mod-97 check (ISO 7064) and the country's length, for an IBAN without spaces."""
    iban = compact.upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    digits = "".join(str(int(ch, 36)) for ch in iban[4:] + iban[:4])
    return int(digits) % 97 == 1


class _IbanRecognizer(LocalRecognizer):
    """IBANs with any spacing, spelled country codes included; checksum-validated."""

    def __init__(self, language: str) -> None:
        super().__init__(supported_entities=[PiiType.IBAN.value], supported_language=language,
                         name=f"voicedesk_iban_{language}")

    @override
    def load(self) -> None:
        pass

    @override
    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
                ) -> list[RecognizerResult]:
        results: list[RecognizerResult] = []
        for m in _IBAN_CANDIDATE.finditer(text):
            country = (m.group(1) + m.group(2)).upper()
            length = _IBAN_LENGTHS.get(country)
            if length is None:
                continue
            compact, end = "", m.start()
            for pos in range(m.start(), m.end()):
                if text[pos].isalnum():
                    compact += text[pos]
                    end = pos + 1
                    if len(compact) == length:
                        break
            if len(compact) == length and iban_is_valid(compact):
                results.append(RecognizerResult(PiiType.IBAN.value, m.start(), end, 1.0))
        return results


class _OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer with a ``tldextract`` that never fetches the suffix list."""

    _extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)

    @override
    def validate_result(self, pattern_text: str) -> bool:
        return bool(self._extract(pattern_text).fqdn)


# --- names -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _NameList:
    first: dict[str, bool]  # folded name -> also a common word (needs context)
    last: dict[str, bool]


def _fold(word: str) -> str:
    return word.casefold().replace("ß", "ss")


def _plain(word: str) -> str:
    """Casefolded letters without diacritics: "Wójcik" and "W O J C I K" compare equal."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if ch.isalpha() and not unicodedata.combining(ch))


@functools.cache
def _load_names(language: str) -> _NameList:
    first: dict[str, bool] = {}
    last: dict[str, bool] = {}
    section = first
    text = resources.files("voicedesk.privacy").joinpath("data", f"names_{language}.txt").read_text(
        encoding="utf-8")
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line == "[first]":
            section = first
        elif line == "[last]":
            section = last
        else:
            ambiguous = line.startswith("~")
            section[_fold(line.lstrip("~"))] = ambiguous
    return _NameList(first, last)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOP = {
    "de": _words(
        "sie ich ihr ihre ihren ihrem ihnen er es wir der die das den dem des ein eine einen einem "
        "guten tag morgen abend hallo herr frau ja nein danke bitte termin praxis doktor uhr also "
        "und aber nur noch mit von vom zum zur am im in an auf bei für wie was wann wo ist hier mein "
        "meine meinen mir mich dann gerne gern okay ok genau so na ach äh ähm hm tschüss wiederhören "
        "montag dienstag mittwoch donnerstag freitag samstag sonntag januar februar märz juni juli "
        "oktober november dezember nummer straße strasse hausnummer kundennummer ihrer wegen "
        "name nachname vorname apotheke firma team kollege kollegin patient patientin hausarzt "
        "zahnarzt arzt ärztin dr prof professor gmbh ag kg e-mail mail adresse telefon handy"
    ),
    "en": _words(
        "i i'm im the a an hi hello hey mr mrs ms miss dr doctor yes no thanks thank please ok okay "
        "and but so or of to for from with at on in by this that it it's is my me we you your "
        "monday tuesday wednesday thursday friday saturday sunday january february march july "
        "september october november december street road avenue lane number calling speaking here "
        "just well um uh oh sorry good morning afternoon evening appointment surgery clinic "
        "office team ltd inc plc email mail address phone mobile"
    ),
}
_TITLES = {
    "de": {"herr", "herrn", "frau", "hr", "fr", "dr", "doktor", "prof", "professor"},
    "en": {"mr", "mrs", "ms", "miss", "mister", "dr", "doctor", "prof", "professor", "sir", "madam"},
}
# Strong cues: whatever capitalised words follow are taken as a name. Weak cues: only
# words on the name list (ambiguous ones included).
_STRONG_CUES = {
    "de": re.compile(
        r"\b(?:(?:ich\s+)?hei(?:ß|ss)e|mein\s+name\s+ist|name\s+ist|name\s+lautet|(?:vor|nach|familien)name"
        r"(?:\s+ist|\s+lautet)?|auf\s+den\s+namen|unter\s+dem\s+namen|im\s+namen\s+von)\b[\s:,]*",
        re.IGNORECASE,
    ),
    "en": re.compile(
        r"\b(?:my\s+name\s+is|my\s+name's|name\s+is|name's|(?:first|last|sur|family)\s*name(?:\s+is)?"
        r"|under\s+the\s+name(?:\s+of)?|in\s+the\s+name\s+of|(?:I'm|I\s+am)\s+called)\b[\s:,]*",
        re.IGNORECASE,
    ),
}
_WEAK_CUES = {
    "de": re.compile(r"\b(?:hier\s+ist|hier\s+spricht|ich\s+bin|ich\s+bins|ich\s+bin's|mit|für|von)\b[\s:,]*",
                     re.IGNORECASE),
    "en": re.compile(r"\b(?:this\s+is|it's|it\s+is|I'm|I\s+am|with|for|from|ask\s+for)\b[\s:,]*",
                     re.IGNORECASE),
}
_EN_CALENDAR_NAMES = {"april", "may", "june", "august"}
_FILLERS = {"äh", "ähm", "hm", "also", "uh", "um", "erm", "ja", "yes", "so"}
_NAME_TOKEN = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
_SPELLED_NAME = re.compile(r"(?<![^\W_])(?:[^\W\d_][ ,\-]+){2,}[^\W\d_](?![^\W_])(?!\s*\d)")
_PHONETIC_NAME = re.compile(
    r"(?<![^\W_])(?:[^\W\d_]\s+(?:wie|as\s+in|for)\s+[^\W\d_]+[,;]?\s*){2,}", re.IGNORECASE
)
_SPELL_CUES = re.compile(r"buchstabier|schreibt\s+sich|geschrieben|spell|spelt|spelled", re.IGNORECASE)


class _NameRecognizer(LocalRecognizer):
    """Names from the shipped name list, titles ("Frau", "Mr") and name cues."""

    def __init__(self, language: Language, known: Iterable[str] = ()) -> None:
        self._language = language
        self._names = _load_names(language)
        self._stop = _STOP[language]
        self._titles = _TITLES[language]
        self._known = {_fold(w) for w in known}
        super().__init__(supported_entities=[PiiType.NAME.value], supported_language=language,
                         name=f"voicedesk_name_{language}")

    @override
    def load(self) -> None:
        pass

    def _lookup(self, word: str) -> tuple[bool, bool, bool, bool]:
        """(first, last, ambiguous, known) for one word; genitive "s" is tolerated."""
        f = _fold(word)
        for possessive in ("'s", "’s"):
            f = f.removesuffix(possessive)
        candidates = [f, f[:-1]] if f.endswith("s") and len(f) > 3 else [f]
        for c in candidates:
            if c in self._known:
                return True, True, False, True
            first, last = self._names.first.get(c), self._names.last.get(c)
            if first is not None or last is not None:
                ambiguous = (first is None or first) and (last is None or last)
                return first is not None, last is not None, bool(ambiguous), False
        return False, False, False, False

    @override
    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
                ) -> list[RecognizerResult]:
        tokens = [(m.start(), m.end(), m.group(0)) for m in _NAME_TOKEN.finditer(text)]
        n = len(tokens)
        info = [self._lookup(w) for _, _, w in tokens]
        stop = [_fold(w) in self._stop for _, _, w in tokens]
        cap = [w[0].isupper() for _, _, w in tokens]
        flagged = [False] * n

        def joined(i: int, *, after_title: bool = False) -> bool:
            gap = text[tokens[i - 1][1] : tokens[i][0]]
            return gap.strip() == "" or (after_title and gap.strip() == ".")

        for i in range(n):
            first, last, ambiguous, known = info[i]
            if known or ((first or last) and not ambiguous and not stop[i]):
                flagged[i] = True
            elif (
                ambiguous and self._language == "en" and cap[i] and not stop[i]
                and _fold(tokens[i][2]) not in _EN_CALENDAR_NAMES
                and text[: tokens[i][0]].rstrip()[-1:] not in ("", ".", "!", "?", '"')
            ):
                # English capitalises names, not words, mid-sentence.
                flagged[i] = True

        starts = {s: i for i, (s, _, _) in enumerate(tokens)}

        def next_joined(k: int) -> int:
            return k + 1 if k + 1 < n and joined(k + 1) else n

        for cue, strong in ((_STRONG_CUES[self._language], True), (_WEAK_CUES[self._language], False)):
            for m in cue.finditer(text):
                k = starts.get(m.end(), n)
                while k < n and _fold(tokens[k][2]) in _FILLERS:
                    k = next_joined(k)
                taken = 0
                while k < n and taken < 3:
                    first, last, _, known = info[k]
                    listed = first or last or known
                    if (stop[k] and not listed) or not (listed or (strong and cap[k])):
                        break
                    flagged[k] = True
                    taken += 1
                    k = next_joined(k)

        for _ in range(2):
            for i in range(n):
                if flagged[i] or not cap[i] or (stop[i] and not info[i][0] and not info[i][1]):
                    continue
                first, last, _, _ = info[i]
                prev = i - 1
                prev_word = _fold(tokens[prev][2]) if prev >= 0 else ""
                after_title = prev >= 0 and prev_word in self._titles and joined(i, after_title=True)
                after_first = prev >= 0 and flagged[prev] and info[prev][0] and joined(i) and not stop[i]
                before_last = (
                    (first or last) and i + 1 < n and flagged[i + 1] and info[i + 1][1] and joined(i + 1)
                )
                if after_title or after_first or before_last:
                    flagged[i] = True

        results: list[RecognizerResult] = []
        i = 0
        while i < n:
            if not flagged[i]:
                i += 1
                continue
            j = i
            while j + 1 < n and flagged[j + 1] and joined(j + 1):
                j += 1
            results.append(RecognizerResult(PiiType.NAME.value, tokens[i][0], tokens[j][1], 0.85))
            i = j + 1

        for m in _PHONETIC_NAME.finditer(text):
            results.append(RecognizerResult(PiiType.NAME.value, m.start(), m.end(), 0.8))
        for m in _SPELLED_NAME.finditer(text):
            window = text[max(0, m.start() - 80) : m.start()]
            near_name = any(r.end <= m.start() and r.end >= m.start() - 80 for r in results)
            spelled = _plain("".join(ch for ch in m.group(0) if ch.isalpha()))
            before = [t for t in tokens if t[1] <= m.start() and text[t[1] : m.start()].strip(" ,:-") == ""]
            if before and _plain(before[-1][2]) == spelled:
                # "Wójcik, W O J C I K": a word followed by its own spelling is a name.
                results.append(RecognizerResult(PiiType.NAME.value, before[-1][0], before[-1][1], 0.85))
                near_name = True
            if near_name or _SPELL_CUES.search(window):
                results.append(RecognizerResult(PiiType.NAME.value, m.start(), m.end(), 0.8))
        return results


# --- patterns --------------------------------------------------------------------------

_I = re.IGNORECASE
_SEP_DIGIT = r"(?:,?\s|[\-/]|\s(?:und\s+dann|and\s+then|dann|then)\s)?"

_PHONE_PATTERNS = [
    re.compile(r"(?<![\w+])(?P<pii>\+\s?\d(?:[\s\-/().,]{0,2}\d){6,14})(?!\d)"),
    re.compile(rf"(?<![\w.,+])(?P<pii>0\d(?:{_SEP_DIGIT}\d){{6,13}})(?![\d])"),
    re.compile(
        r"(?:\b(?:telefon\w*|handy\w*|mobil\w*|festnetz\w*|rückruf\w*|durchwahl|nummer|erreichbar|"
        r"erreichen|anrufen|zurückrufen|phone|mobile|cell|telephone|landline|number|call\s+me|"
        r"reach\s+me|call\s+back|ring\s+me|text\s+me))\b[^.?!\d]{0,40}?"
        rf"(?P<pii>\d(?:{_SEP_DIGIT}\d){{5,14}})(?!\d)",
        _I,
    ),
]

_CUSTOMER_CUE = (
    r"(?:(?:kunden|referenz|vorgangs|auftrags|bestell|rechnungs|mitglieds|versicherten|vertrags|"
    r"patienten|akten|buchungs|ticket|fall|kassen)[\s\-]*(?:nummer|nr\.?|zeichen|id|kennung)|"
    r"aktenzeichen|(?:customer|client|reference|ref|account|order|booking|membership|member|invoice|"
    r"policy|case|ticket|patient|confirmation)\s*(?:number|no\.?|id|code|reference|ref\.?)|"
    r"booking\s+reference|reference)"
)
_CUSTOMER_PATTERNS = [
    re.compile(
        rf"\b{_CUSTOMER_CUE}\b(?:\s*(?:ist|lautet|is|:|#|was|war|also|äh|ähm|uh|um|die|the|,)\s*)*"
        r"(?:[^.?!\d]{0,40}?\s)??"
        r"(?P<pii>(?:[a-z]{1,4}[\-\s]?|(?:[a-z](?:,?\s|-)){1,4})?\d(?:[\-/]?[a-z0-9]|\s\d|\s[a-z](?![^\W_])){2,})",
        _I,
    ),
]

_MONTHS = (
    r"(?:januar|jänner|februar|märz|maerz|april|mai|juni|juli|august|september|oktober|november|"
    r"dezember|january|february|march|may|june|july|october|december|"
    r"jan|feb|mär|mar|apr|jun|jul|aug|sep|sept|okt|oct|nov|dez|dec)(?:\.|\b)"
)
_DATE = (
    rf"(?:(?:the\s+)?\d{{1,2}}(?:\.|st|nd|rd|th)?[\s,]*(?:of\s+)?(?:{_MONTHS}|\d{{1,2}}\.?)[\s,./-]*(?:\d{{4}}|\d{{2}})?"
    rf"|{_MONTHS}\s+(?:the\s+)?\d{{1,2}}(?:st|nd|rd|th)?,?\s*(?:\d{{4}}|\d{{2}})?"
    r"|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}"
    r"|(?:19|20)\d{2}(?!\d))"
)
_DOB_CUE = (
    r"(?:geboren(?:\s+(?:am|den|im))?|geburtsdatum|geburtstag|geb\.|date\s+of\s+birth|birth\s*date|"
    r"born(?:\s+on)?|d\.?\s?o\.?\s?b\.?|birthday)"
)
_DOB_FILLER = (
    r"(?:(?:ist|lautet|is|am|on|the|der|den|war|was|ich|bin|wurde|I|mein|my|it's|its|in|im|jahr|year)\b|[:,])"
)
_DOB_PATTERNS = [
    re.compile(rf"\b{_DOB_CUE}(?:\s*{_DOB_FILLER})*\s*(?P<pii>{_DATE})", _I),
    re.compile(rf"(?:\bam|\bon|\bin|\bim|\bbin|\bwas|\bwurde)\s+(?P<pii>{_DATE})\s+(?:geboren|born)\b", _I),
]

_STREET_SUFFIX = (
    r"(?i:stra(?:ß|ss)e|str\.|weg|platz|allee|gasse|ring|damm|ufer|chaussee|steig|pfad|markt|"
    r"garten|graben|kamp|wall|hof|berg|park|anger|zeile|promenade)"
)
_HOUSE_NO = r"\s*(?:(?:nr\.?|nummer|hausnummer)\s*)?\d{1,4}(?:\s?[a-h](?![^\W_]))?(?:\s?[-/]\s?\d{1,4})?"
_ADDRESS_PATTERNS = {
    "de": [
        re.compile(
            rf"(?P<pii>(?:[A-ZÄÖÜ][\wäöüß]*(?:er|sche|s)\s+)?"
            rf"(?:[A-ZÄÖÜ][\wäöüß]*(?:-[\wäöüß]+)*-?{_STREET_SUFFIX}|"
            r"(?:Straße|Strasse|Str\.|Weg|Platz|Allee|Gasse|Ring|Damm|Ufer|Chaussee|Markt))"
            rf"{_HOUSE_NO})(?!\d)",
        ),
        re.compile(
            r"(?P<pii>\b(?:Am|An\s+der|An\s+den|Auf\s+der|Auf\s+dem|Im|In\s+der|Zum|Zur|Unter\s+den|Hinter\s+der)"
            rf"\s+[A-ZÄÖÜ][\wäöüß\-]+{_HOUSE_NO})(?!\d)",
        ),
    ],
    "en": [
        re.compile(
            r"(?P<pii>(?:(?i:flat|apartment|apt\.?|unit|suite)\s+\d+[A-Za-z]?,?\s+)?\b\d{1,5}[A-Za-z]?,?\s+"
            r"(?:[A-Z][a-z']+\s+){0,3}(?:Street|St\.?|Road|Rd\.?|Avenue|Ave\.?|Lane|Ln\.?|Drive|Close|Way|"
            r"Court|Ct\.?|Place|Pl\.?|Crescent|Terrace|Gardens|Boulevard|Blvd\.?|Square|Row|Grove|Hill|"
            r"Parkway|Mews|Walk|Park))\b",
        ),
    ],
}

_NOT_A_CITY = (
    r"(?:Euro|EUR|Stück|Uhr|Mal|Kilometer|Km|Minuten|Stunden|Tage|Jahre|Prozent|Dollar|Pfund|Pounds|"
    r"Kunden|Leute|Menschen|Punkte|Meter)\b"
)
_POSTCODE_PATTERNS = {
    "de": [
        re.compile(r"\b(?:plz|postleitzahl)\s*(?:ist|lautet|:)?\s*(?P<pii>\d{5})(?!\d)", _I),
        re.compile(rf"(?<![\d.,])(?P<pii>\d{{5}})\s+(?!{_NOT_A_CITY})[A-ZÄÖÜ][a-zäöüß]+"),
    ],
    "en": [
        re.compile(r"\b(?:zip(?:\s*code)?|post\s*code|postal\s+code)\s*(?:is|:)?\s*"
                   r"(?P<pii>\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})\b", _I),
        re.compile(r"\b[A-Z]{2}\s+(?P<pii>\d{5}(?:-\d{4})?)\b"),
        re.compile(
            r"(?<![\w])(?P<pii>[A-PR-UWYZ]\s?(?:[A-HK-Y]\s?)?\d\s?(?:[A-Z\d]\s?)?,?\s?\d\s?[ABD-HJLNP-UW-Z]\s?"
            r"[ABD-HJLNP-UW-Z])(?![\w])"
        ),
        re.compile(rf"(?<![\d.,])(?P<pii>\d{{5}})\s+(?!{_NOT_A_CITY})[A-ZÄÖÜ][a-zäöüß]+"),
    ],
}


def _digits_pattern(value: str) -> re.Pattern[str] | None:
    digits = re.sub(r"\D", "", value)
    if digits.startswith("49") and value.lstrip().startswith(("+", "00")):
        digits = digits[2:]
    tail = digits[-7:]
    if len(tail) < 5:
        return None
    return re.compile(r"(?<!\d)" + r"[\s\-/]?".join(tail) + r"(?!\d)")


def _literal_pattern(value: str) -> re.Pattern[str] | None:
    value = value.strip()
    if len(value) < 3:
        return None
    body = r"\s*".join(re.escape(part) for part in value.split())
    return re.compile(rf"(?<![^\W_]){body}(?![^\W_])", _I)


def _contact_recognizers(contact: ContactData, language: Language) -> list[EntityRecognizer]:
    recognizers: list[EntityRecognizer] = [_NameRecognizer(language, _name_parts(contact.names))]
    table: list[tuple[PiiType, list[re.Pattern[str] | None]]] = [
        (PiiType.PHONE, [_digits_pattern(p) for p in contact.phones]),
        (PiiType.EMAIL, [_literal_pattern(e) for e in contact.emails]),
        (PiiType.ADDRESS, [_literal_pattern(re.sub(r"\s*\d.*$", "", a)) for a in contact.addresses]),
        (PiiType.CUSTOMER_ID, [_literal_pattern(c) for c in contact.customer_ids]
         + [_digits_pattern(c) for c in contact.customer_ids]),
        (PiiType.NAME, [_literal_pattern(name) for name in contact.names]),
    ]
    for entity, maybe in table:
        patterns = [p for p in maybe if p is not None]
        if patterns:
            recognizers.append(_RegexRecognizer(entity, patterns, language=language, score=0.95,
                                                name=f"voicedesk_contact_{entity.value.lower()}"))
    return recognizers


def _name_parts(names: Iterable[str]) -> list[str]:
    return [part for name in names for part in _NAME_TOKEN.findall(name) if len(part) >= 2]


# --- the engine ------------------------------------------------------------------------


class Redactor:
    """Finds and replaces personal data in transcripts; build once, reuse for every turn."""

    def __init__(self, languages: Sequence[Language] = LANGUAGES) -> None:
        for language in languages:
            if language not in LANGUAGES:
                raise InvalidInputError(f"unsupported language {language!r}", field="language")
        self._languages = tuple(languages)
        self._phone_regions = {"de": ("DE", "AT", "CH"), "en": ("GB", "US", "IE", "DE")}
        recognizers: list[LocalRecognizer] = []
        for language in self._languages:
            recognizers += [
                PhoneRecognizer(supported_language=language, supported_entity=PiiType.PHONE.value,
                                supported_regions=self._phone_regions[language], leniency=1,
                                name=f"presidio_phone_{language}"),
                _RegexRecognizer(PiiType.PHONE, _PHONE_PATTERNS, language=language, score=0.7),
                _OfflineEmailRecognizer(supported_language=language, supported_entity=PiiType.EMAIL.value,
                                        name=f"presidio_email_{language}"),
                _IbanRecognizer(language),
                _RegexRecognizer(PiiType.CUSTOMER_ID, _CUSTOMER_PATTERNS, language=language),
                _RegexRecognizer(PiiType.DOB, _DOB_PATTERNS, language=language),
                _RegexRecognizer(PiiType.ADDRESS, _ADDRESS_PATTERNS[language], language=language),
                _RegexRecognizer(PiiType.POSTCODE, _POSTCODE_PATTERNS[language], language=language),
            ]
            _load_names(language)
        registry = RecognizerRegistry(recognizers=recognizers, supported_languages=list(self._languages))
        engine = NoOpNlpEngine(models=[{"lang_code": lang, "model_name": "none"} for lang in self._languages])
        self._analyzer = AnalyzerEngine(registry=registry, nlp_engine=engine,
                                        supported_languages=list(self._languages))
        self._default_names = {lang: _NameRecognizer(lang) for lang in self._languages}

    def find(self, text: str, language: str, *, contact: ContactData | None = None) -> list[PiiSpan]:
        """Return non-overlapping findings in ``text``, ordered by position."""
        if language not in self._languages:
            raise InvalidInputError(f"unsupported language {language!r}", field="language")
        if not text.strip():
            return []
        norm = normalise_spoken(text, language)
        ad_hoc: list[EntityRecognizer] = (
            _contact_recognizers(contact, language) if contact is not None
            else [self._default_names[language]]
        )
        results = self._analyzer.analyze(text=norm.text, language=language, ad_hoc_recognizers=ad_hoc,
                                         score_threshold=0.3)
        return _resolve(norm, results)

    def redact(self, text: str, language: str, *, contact: ContactData | None = None) -> Redaction:
        """Replace each finding in ``text`` by its placeholder, e.g. ``[PHONE]``."""
        spans = self.find(text, language, contact=contact)
        out: list[str] = []
        pos = 0
        for span in spans:
            out.append(text[pos : span.start])
            out.append(span.type.placeholder)
            pos = span.end
        out.append(text[pos:])
        return Redaction("".join(out), tuple(spans))


def _resolve(norm: Normalised, results: Iterable[RecognizerResult]) -> list[PiiSpan]:
    candidates: list[PiiSpan] = []
    for r in results:
        start, end = norm.to_original(r.start, r.end)
        candidates.append(PiiSpan(PiiType(r.entity_type), start, end, float(r.score)))
    candidates.sort(key=lambda s: (_RANK[s.type], -(s.end - s.start), s.start))
    taken: list[PiiSpan] = []
    for span in candidates:
        if all(span.end <= t.start or span.start >= t.end for t in taken):
            taken.append(span)
    return sorted(taken, key=lambda s: s.start)


@functools.cache
def default_redactor() -> Redactor:
    """The process-wide redactor for German and English (built on first use)."""
    return Redactor()


def redact(text: str, language: str, *, contact: ContactData | None = None) -> Redaction:
    """Redact ``text`` with the process-wide redactor."""
    return default_redactor().redact(text, language, contact=contact)
