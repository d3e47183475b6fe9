"""Slot extraction from one caller utterance: service, name, phone number, e-mail."""

from __future__ import annotations

import difflib
import re

import phonenumbers

from voicedesk.dialogue.rules.lexicon import normalise
from voicedesk.domain.numbers import words_to_digits
from voicedesk.domain.profile import Language, Service, TenantProfile

_LANGUAGES: tuple[Language, ...] = ("de", "en")
_LETTER = r"[A-Za-zÄÖÜäöüß]"
_SPELLED = re.compile(rf"(?<!\w)(?:{_LETTER}(?:\s*[-.]\s*|\s+)){{2,}}{_LETTER}(?!\w)")
_NAME_INTRO: dict[Language, re.Pattern[str]] = {
    "de": re.compile(
        r"(?:mein name ist|mein name lautet|mein name wäre|ich heiße|hier ist|hier spricht|"
        r"auf den namen|name ist|name lautet|ich bin(?: die| der)?)\s+(.+)",
        re.IGNORECASE,
    ),
    "en": re.compile(
        r"(?:my name is|my names|my name's|i'm|i am|this is|it's|its|name is|under the name|"
        r"the name is|call me|under)\s+(.+)",
        re.IGNORECASE,
    ),
}
_NAME_AFTER: dict[Language, re.Pattern[str]] = {
    "de": re.compile(r"^(?:ja,?\s*)?(.+?),?\s+(?:mein name|ist mein name|am apparat)\b", re.IGNORECASE),
    "en": re.compile(r"^(?:yes,?\s*)?(.+?),?\s+(?:speaking|here)\b", re.IGNORECASE),
}
_STOP_NAME_WORDS = {
    "de": {
        "und",
        "ich",
        "möchte",
        "hätte",
        "würde",
        "wollte",
        "brauche",
        "bitte",
        "rufe",
        "wegen",
        "mit",
        "habe",
        "auch",
        "nicht",
        "noch",
        "gerne",
        "gern",
        "dann",
        "danke",
        "für",
        "einen",
        "termin",
        "am",
        "um",
        "der",
        "die",
        "das",
        "weil",
        "meine",
        "mein",
        "sie",
        "wie",
        "aus",
        "in",
    },
    "en": {
        "and",
        "i",
        "id",
        "i'd",
        "would",
        "want",
        "need",
        "please",
        "calling",
        "about",
        "for",
        "with",
        "have",
        "also",
        "not",
        "thanks",
        "thank",
        "an",
        "appointment",
        "on",
        "at",
        "the",
        "because",
        "my",
        "you",
        "from",
        "in",
        "to",
        "like",
        "looking",
        "trying",
        "just",
        "wondering",
        "a",
    },
}
_NOT_NAMES = {
    "de": {
        "patient",
        "patientin",
        "kunde",
        "kundin",
        "neu",
        "neupatient",
        "neupatientin",
        "krank",
        "privatpatient",
        "privatpatientin",
        "kassenpatient",
        "kassenpatientin",
        "noch",
        "da",
        "hier",
        "dran",
        "am",
        "nicht",
        "schon",
        "wieder",
        "es",
    },
    "en": {
        "patient",
        "customer",
        "new",
        "sick",
        "calling",
        "not",
        "sorry",
        "here",
        "still",
        "fine",
        "good",
        "interested",
        "looking",
        "trying",
        "wondering",
        "just",
        "a",
        "an",
        "the",
        "back",
        "afraid",
        "sure",
        "okay",
        "ok",
        "free",
        "available",
        "busy",
    },
}
_TITLES = re.compile(r"^(?:frau|herr|herrn|mr|mrs|ms|miss|mister)\.?\s+", re.IGNORECASE)
_PARTICLES = {"von", "van", "de", "der", "zu", "den", "du", "la", "le", "da"}
_FILLER_PREFIX = re.compile(
    r"^(?:(?:ja|also|äh|ähm|hm|gerne?|okay|ok|sure|yes|yeah|well|uh|um|so|klar|natürlich|of course|"
    r"das ist|that's|thats|it is)\b[\s,.]*)+",
    re.IGNORECASE,
)


def find_service(text: str, profile: TenantProfile, language: Language) -> Service | None:
    """The service named in ``text``: name or alias (any language), compounds, slight misspellings."""
    norm = normalise(text)
    best: tuple[int, Service] | None = None
    words = norm.split()
    for service in profile.services:
        terms: list[str] = []
        for lang in [language, *(code for code in _LANGUAGES if code != language)]:
            name = service.name.get(lang)
            if name:
                terms.append(name)
            terms.extend(service.aliases.get(lang, []))
        for term in terms:
            tn = normalise(term).strip()
            if not tn:
                continue
            hit = f" {tn} " in norm or (len(tn) >= 6 and " " not in tn and tn in norm)
            if not hit and " " not in tn and len(tn) >= 6:
                hit = bool(difflib.get_close_matches(tn, words, n=1, cutoff=0.85))
            if hit and (best is None or len(tn) > best[0]):
                best = (len(tn), service)
    return best[1] if best else None


def _join_spelled(match: re.Match[str]) -> str:
    letters = re.findall(_LETTER, match.group(0))
    word = "".join(letters)
    return word[:1].upper() + word[1:].lower()


def _tidy_name(raw: str, language: Language) -> str | None:
    text = _SPELLED.sub(_join_spelled, raw)
    text = re.split(r"[,.;:!?]", text.strip(), maxsplit=1)[0]
    text = re.sub(r"[^\w\s'-]", " ", text)
    text = _TITLES.sub("", text.strip())
    words: list[str] = []
    for word in text.split():
        low = word.lower()
        particle = bool(words) and low in _PARTICLES
        if (low in _STOP_NAME_WORDS[language] and not particle) or any(ch.isdigit() for ch in word):
            break
        if words and words[-1].lower() == low:
            continue  # "Müller, M-ü-l-l-e-r"
        words.append(word)
        if len(words) == 4:
            break
    if not words or words[0].lower() in _NOT_NAMES[language]:
        return None
    out = [w if (w.lower() in _PARTICLES and i > 0) else w[:1].upper() + w[1:] for i, w in enumerate(words)]
    return " ".join(out)


def extract_name(text: str, language: Language, *, expecting: bool) -> str | None:
    """A caller's name: "mein Name ist Anna Müller", "I'm Tom", "M-ü-l-l-e-r".

    Without an introducing phrase the whole utterance counts only when ``expecting`` a
    name (the last question asked for it) and it is short.
    """
    stripped = text.strip()
    m = _NAME_INTRO[language].search(stripped)
    if m:
        candidate = m.group(1)
        # "I'm calling about …" and "ich bin krank" are not introductions; names are capitalised
        # by speech recognition unless we asked for the name.
        first = candidate.strip().split(" ")[0] if candidate.strip() else ""
        if expecting or (first[:1].isupper() and first.lower() not in _NOT_NAMES[language]):
            name = _tidy_name(candidate, language)
            if name:
                return name
    m = _NAME_AFTER[language].search(stripped)
    if m:
        name = _tidy_name(m.group(1), language)
        if name:
            return name
    if not expecting:
        return None
    rest = _FILLER_PREFIX.sub("", stripped)
    if _SPELLED.search(rest):
        rest = _SPELLED.sub(_join_spelled, rest)
    if not rest or len(rest.split()) > 5 or any(ch.isdigit() for ch in rest):
        return None
    return _tidy_name(rest, language)


def default_region(profile: TenantProfile) -> str:
    """The country for numbers said without a prefix: from ``holiday_region``, else DE."""
    if profile.holiday_region:
        return profile.holiday_region.split("-")[0].upper()
    if profile.forwarding_number:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(profile.forwarding_number))
        if region:
            return str(region)
    return "DE"


_PLUS = re.compile(r"\bplus\b", re.IGNORECASE)
_DIGIT_RUN = re.compile(r"\+?\d[\d\s\-/().]*\d")


def extract_phone(text: str, language: Language, region: str) -> str | None:
    """A phone number said as digits or words ("null eins sieben eins …") in E.164, or ``None``."""
    converted = words_to_digits(_PLUS.sub("+", text), language)
    runs = [r for r in _DIGIT_RUN.findall(converted)]
    if not runs:
        return None
    # several runs can be one number said in groups: join them all
    joined = "".join(runs)
    digits = re.sub(r"[^\d+]", "", joined)
    if digits.count("+") > 1 or ("+" in digits and not digits.startswith("+")):
        digits = "+" + digits.replace("+", "")
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if len(re.sub(r"\D", "", digits)) < 6:
        return None
    try:
        parsed = phonenumbers.parse(digits, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_EMAIL_WORDS: dict[Language, tuple[tuple[str, str], ...]] = {
    "de": (
        (r"\s+(?:punkt)\s+", "."),
        (r"\s+(?:at|ät|et|klammeraffe|at-zeichen)\s+", "@"),
        (r"\s+(?:minus|bindestrich|strich)\s+", "-"),
        (r"\s+(?:unterstrich)\s+", "_"),
    ),
    "en": (
        (r"\s+(?:dot|point)\s+", "."),
        (r"\s+(?:at|at sign)\s+", "@"),
        (r"\s+(?:dash|hyphen|minus)\s+", "-"),
        (r"\s+(?:underscore)\s+", "_"),
    ),
}
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)


def extract_email(text: str, language: Language) -> str | None:
    """An e-mail address, also as said: "anna punkt müller at gmx punkt de" → anna.müller@gmx.de."""
    work = " " + text.strip().lower() + " "
    for pattern, repl in _EMAIL_WORDS[language]:
        work = re.sub(pattern, repl, work)
    work = re.sub(r"\s*([@._])\s*", r"\1", work)
    m = _EMAIL.search(work)
    if not m:
        return None
    return m.group(0).strip(".-_")
