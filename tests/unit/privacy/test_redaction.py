"""PII redaction of transcripts (R-7.3): recall on hand-written German and English turns,
spoken forms, offline operation, latency."""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from voicedesk.domain.errors import InvalidInputError
from voicedesk.privacy.redaction import (
    ContactData,
    PiiSpan,
    PiiType,
    Redactor,
    default_redactor,
    iban_is_valid,
    redact,
)
from voicedesk.privacy.spoken import normalise_spoken, parse_number_word, words_to_digits

DATA = Path(__file__).resolve().parents[2] / "data" / "redaction"
RECALL_FLOOR = {PiiType.PHONE: 0.95, PiiType.EMAIL: 0.95, PiiType.IBAN: 0.95, PiiType.NAME: 0.85}


@dataclass(frozen=True)
class Turn:
    text: str
    expected: tuple[tuple[PiiType, int, int], ...]
    contact: ContactData | None


def load_turns(language: str) -> list[Turn]:
    raw: dict[str, Any] = yaml.safe_load((DATA / f"{language}.yaml").read_text(encoding="utf-8"))
    assert raw["language"] == language
    turns: list[Turn] = []
    for item in raw["turns"]:
        text: str = item["text"]
        expected: list[tuple[PiiType, int, int]] = []
        for entry in item.get("pii", []):
            kind, needle = PiiType(entry[0]), entry[1]
            occurrence = entry[2] if len(entry) > 2 else 0
            start = -1
            for _ in range(occurrence + 1):
                start = text.index(needle, start + 1)
            expected.append((kind, start, start + len(needle)))
        contact = None
        if "contact" in item:
            contact = ContactData(**{k: tuple(v) for k, v in item["contact"].items()})
        turns.append(Turn(text, tuple(expected), contact))
    return turns


def report(lines: list[str]) -> None:
    """The measured figures are this module's output (run with ``-s`` to see them)."""
    print("\n" + "\n".join(lines))  # noqa: T201


@dataclass
class Score:
    expected: int = 0
    found: int = 0
    predicted: int = 0
    correct: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0


def covered(text: str, start: int, end: int, spans: list[PiiSpan], kind: PiiType) -> bool:
    """Every non-blank character of ``text[start:end]`` lies in a span of type ``kind``."""
    return all(
        text[i].isspace() or text[i] in ",." or any(s.type is kind and s.start <= i < s.end for s in spans)
        for i in range(start, end)
    )


def evaluate(language: str) -> tuple[dict[PiiType, Score], list[str]]:
    redactor = default_redactor()
    scores = {kind: Score() for kind in PiiType}
    misses: list[str] = []
    for turn in load_turns(language):
        spans = redactor.find(turn.text, language, contact=turn.contact)
        for kind, start, end in turn.expected:
            scores[kind].expected += 1
            if covered(turn.text, start, end, spans, kind):
                scores[kind].found += 1
            else:
                misses.append(f"miss {kind.value}: {turn.text[start:end]!r} in {turn.text!r}")
        for span in spans:
            scores[span.type].predicted += 1
            if any(k is span.type and s < span.end and span.start < e for k, s, e in turn.expected):
                scores[span.type].correct += 1
            else:
                misses.append(f"extra {span.type.value}: {turn.text[span.start:span.end]!r} in {turn.text!r}")
    return scores, misses


@pytest.mark.req("R-7.3")
@pytest.mark.parametrize("language", ["de", "en"])
def test_recall_and_precision_per_type(language: str) -> None:
    turns = load_turns(language)
    assert len(turns) >= 100
    scores, misses = evaluate(language)
    lines = [f"redaction {language}: {len(turns)} turns",
             f"{'type':<12} {'expected':>8} {'recall':>7} {'predicted':>9} {'precision':>9}"]
    for kind, s in scores.items():
        lines.append(f"{kind.value:<12} {s.expected:>8} {s.recall:>7.3f} {s.predicted:>9} {s.precision:>9.3f}"
                     )
    report(lines + ["  " + line for line in misses])
    for kind, floor in RECALL_FLOOR.items():
        assert scores[kind].expected >= 10, f"{kind.value}: too few {language} examples to measure"
        assert scores[kind].recall >= floor, f"{kind.value} recall {scores[kind].recall:.3f} < {floor}"


@pytest.mark.req("R-7.3")
@pytest.mark.parametrize(
    ("language", "text", "expected"),
    [
        ("de", "Meine Nummer ist null eins sieben eins zwei drei vier fünf sechs sieben acht.",
         "Meine Nummer ist [PHONE]."),
        ("de", "Meine E-Mail ist anna punkt müller at gmx punkt de.", "Meine E-Mail ist [EMAIL]."),
        ("de", "IBAN D E acht neun drei sieben null vier null null vier vier null fünf drei zwei null eins "
         "drei null null null, danke.", "IBAN [IBAN], danke."),
        ("de", "Ich wohne in der Goethestraße zwölf, sechs null drei eins eins Frankfurt.",
         "Ich wohne in der [ADDRESS], [POSTCODE] Frankfurt."),
        ("de", "Ich bin geboren am zwölften dritten neunzehnhundertfünfundachtzig.",
         "Ich bin geboren am [DOB]."),
        ("de", "Meine Kundennummer ist vier sieben eins eins drei.", "Meine Kundennummer ist [CUSTOMER_ID]."),
        ("de", "Guten Tag, hier ist Anna Müller.", "Guten Tag, hier ist [NAME]."),
        ("en", "Call me on zero seven seven double oh nine hundred one two three.", "Call me on [PHONE]."),
        ("en", "It's anna dot smith at example dot com.", "It's [EMAIL]."),
        ("en", "My date of birth is the third of May nineteen ninety.", "My date of birth is the [DOB]."),
        ("en", "Twenty two Baker Street, London, NW1 6XE.", "[ADDRESS], London, [POSTCODE]."),
        ("en", "My customer number is AB 12345.", "My customer number is [CUSTOMER_ID]."),
    ],
)
def test_redacts_spoken_and_written_forms(language: str, text: str, expected: str) -> None:
    result = redact(text, language)
    assert result.text == expected
    assert all(0 <= s.start < s.end <= len(text) for s in result.spans)


@pytest.mark.req("R-7.3")
def test_spans_point_into_the_original_text_and_hold_no_data() -> None:
    text = "Hallo, ich bin Sabine Müller, null eins sieben eins zwei drei vier fünf sechs sieben acht."
    result = redact(text, "de")
    assert [(s.type, text[s.start : s.end]) for s in result.spans] == [
        (PiiType.NAME, "Sabine Müller"),
        (PiiType.PHONE, "null eins sieben eins zwei drei vier fünf sechs sieben acht"),
    ]
    assert "Müller" not in repr(result.spans)


@pytest.mark.req("R-7.3")
def test_contact_data_of_the_call_is_redacted_in_any_spelling() -> None:
    contact = ContactData(names=("Zbigniew Przybylski",), phones=("+49 170 9876543",),
                          emails=("zb@przybylski.example",), customer_ids=("K-2231",))
    text = "Przybylski hier, Kundenkonto K-2231, Rückruf auf die neun acht sieben sechs fünf vier drei."
    result = redact(text, "de", contact=contact)
    assert result.text == "[NAME] hier, Kundenkonto [CUSTOMER_ID], Rückruf auf die [PHONE]."
    without = redact(text, "de")
    assert "Przybylski" in without.text


@pytest.mark.req("R-7.3")
@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("de", "Ich hätte gern einen Termin am Montag um zehn Uhr dreißig."),
        ("de", "Die Reparatur hat dreihundertfünfzig Euro gekostet."),
        ("de", "Wir brauchen einen Zimmermann und einen Koch für die Feier."),
        ("de", "Der Termin am zwölften März um vierzehn Uhr passt."),
        ("en", "May I book an appointment for the first of June at ten thirty?"),
        ("en", "We'll be there at ten dot thirty, the green door on the left."),
        ("en", "It costs one hundred and twenty pounds."),
    ],
)
def test_leaves_turns_without_personal_data_alone(language: str, text: str) -> None:
    assert redact(text, language).text == text


@pytest.mark.req("R-7.3")
@pytest.mark.parametrize(
    ("iban", "valid"),
    [("DE89370400440532013000", True), ("DE89370400440532013001", False), ("GB29NWBK60161331926819", True),
     ("DE8937040044053201300", False), ("XX89370400440532013000", False)],
)
def test_iban_checksum(iban: str, valid: bool) -> None:
    assert iban_is_valid(iban) is valid


def test_invalid_iban_is_not_reported_as_iban() -> None:
    result = redact("Die IBAN ist DE89 3704 0044 0532 0130 01.", "de")
    assert PiiType.IBAN not in {s.type for s in result.spans}


def test_unknown_language_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInputError) as info:
        redact("bonjour", "fr")
    assert info.value.field == "language"
    with pytest.raises(InvalidInputError):
        Redactor(languages=("fr",))  # type: ignore[arg-type]


def test_empty_text() -> None:
    assert redact("  ", "de").text == "  "
    assert redact("", "en").spans == ()


@pytest.mark.parametrize(
    ("language", "spoken", "digits"),
    [
        ("de", "null eins sieben eins zwei drei", "017123"),
        ("de", "neunzehnhundertfünfundachtzig", "1985"),
        ("de", "doppel null vier neun", "0049"),
        ("de", "am zwölften dritten", "am 12. 3."),
        ("de", "einen Termin um zehn", "einen Termin um 10"),
        ("en", "oh seven seven double oh nine", "077009"),
        ("en", "nineteen eighty-five", "1985"),
        ("en", "two thousand and five", "2005"),
        ("en", "one hundred twenty three", "123"),
        ("en", "the third of May", "the 3rd of May"),
        ("en", "my first name", "my first name"),
    ],
)
def test_words_to_digits(language: str, spoken: str, digits: str) -> None:
    assert words_to_digits(spoken, language) == digits


@pytest.mark.parametrize(
    ("word", "language", "value"),
    [("dreiundzwanzig", "de", 23), ("einhundertsiebzig", "de", 170), ("zweitausendeins", "de", 2001),
     ("fuenf", "de", 5), ("Dreißig", "de", 30), ("twenty-three", "en", 23), ("hundred", "en", 100),
     ("banane", "de", None), ("und", "de", None), ("twentyfoo", "en", None)],
)
def test_parse_number_word(word: str, language: str, value: int | None) -> None:
    assert parse_number_word(word, language) == value


def test_normalised_text_maps_back_to_the_original() -> None:
    text = "Mail: anna punkt müller at gmx punkt de, Tel null eins sieben eins"
    norm = normalise_spoken(text, "de")
    assert norm.text == "Mail: anna.müller@gmx.de, Tel 0171"
    start = norm.text.index("anna")
    end = start + len("anna.müller@gmx.de")
    s, e = norm.to_original(start, end)
    assert text[s:e] == "anna punkt müller at gmx punkt de"
    with pytest.raises(ValueError, match="outside"):
        norm.to_original(5, 500)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Any attempt to open a connection or resolve a name is recorded and refused."""
    attempts: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(repr(args[:2]))
        raise OSError("network access is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts


@pytest.mark.req("R-7.3")
def test_builds_and_redacts_with_the_network_blocked(no_network: list[str]) -> None:
    redactor = Redactor()
    for language in ("de", "en"):
        for turn in load_turns(language):
            redactor.redact(turn.text, language, contact=turn.contact)
    result = redactor.redact("Schreiben Sie an info at praxis minus weber punkt de", "de")
    assert result.text == "Schreiben Sie an [EMAIL]"
    assert no_network == []


@pytest.mark.req("R-7.3")
def test_latency_per_turn() -> None:
    redactor = default_redactor()
    turns = [(language, t) for language in ("de", "en") for t in load_turns(language)]
    for language, turn in turns:
        redactor.redact(turn.text, language)
    timings: list[float] = []
    for _ in range(5):
        for language, turn in turns:
            started = time.perf_counter()
            redactor.redact(turn.text, language, contact=turn.contact)
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p50 = statistics.median(timings)
    p95 = timings[int(len(timings) * 0.95) - 1]
    report([f"redaction latency over {len(timings)} turns: p50 {p50:.2f} ms, p95 {p95:.2f} ms, "
            f"max {timings[-1]:.2f} ms (target p95 <= 20 ms)"])
    assert p95 < 100, "redaction is far slower than the 20 ms budget: is a model being loaded per call?"
