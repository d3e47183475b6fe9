"""Slot extraction: names, phone numbers, e-mail addresses and services as callers say them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.scenarios import load_profile
from voicedesk.dialogue.rules.extract import extract_email, extract_name, extract_phone, find_service
from voicedesk.domain.profile import Language

PROFILES = Path(__file__).resolve().parents[2] / "scenarios" / "profiles"


@pytest.mark.parametrize(
    ("text", "language", "expecting", "name"),
    [
        ("Mein Name ist Anna Müller", "de", False, "Anna Müller"),
        ("Guten Tag, hier spricht Klaus Weber, ich brauche einen Termin", "de", False, "Klaus Weber"),
        ("M-ü-l-l-e-r", "de", True, "Müller"),
        ("Müller, M Ü L L E R", "de", True, "Müller"),
        ("Frau Schmidt", "de", True, "Schmidt"),
        ("ja, also, Peter von der Heide", "de", True, "Peter von der Heide"),
        ("ich bin krank", "de", False, None),
        ("Ich hätte gern einen Termin", "de", True, None),
        ("I'm Tom Baker", "en", False, "Tom Baker"),
        ("This is Sarah Jones, can I book a tyre change?", "en", False, "Sarah Jones"),
        ("I'm calling about my car", "en", False, None),
        ("S-m-y-t-h-e", "en", True, "Smythe"),
        ("my name is john smith", "en", True, "John Smith"),
    ],
)
def test_extract_name(text: str, language: Language, expecting: bool, name: str | None) -> None:
    assert extract_name(text, language, expecting=expecting) == name


@pytest.mark.parametrize(
    ("text", "language", "region", "number"),
    [
        ("null eins sieben eins, zwei drei vier fünf sechs sieben acht", "de", "DE", "+491712345678"),
        ("meine Nummer ist 0171 2345678", "de", "DE", "+491712345678"),
        ("plus vier neun eins fünf eins eins zwei drei vier fünf sechs sieben acht", "de", "DE", "+4915112345678"),
        ("zero seven seven zero zero, nine double zero one two three", "en", "GB", "+447700900123"),
        ("oh seven nine one one, one two three four five six", "en", "GB", "+447911123456"),
        ("eins zwei", "de", "DE", None),
        ("keine Ahnung", "de", "DE", None),
    ],
)
def test_extract_phone_to_e164(text: str, language: Language, region: str, number: str | None) -> None:
    assert extract_phone(text, language, region) == number


@pytest.mark.parametrize(
    ("text", "language", "email"),
    [
        ("anna punkt müller at gmx punkt de", "de", "anna.müller@gmx.de"),
        ("meine E-Mail ist lisa punkt berg at web punkt de", "de", "lisa.berg@web.de"),
        ("max unterstrich mustermann at firma minus x punkt de", "de", "max_mustermann@firma-x.de"),
        ("my email is tom dot baker at gmail dot com", "en", "tom.baker@gmail.com"),
        ("write to jane@example.org please", "en", "jane@example.org"),
        ("I have no email", "en", None),
    ],
)
def test_extract_email(text: str, language: Language, email: str | None) -> None:
    assert extract_email(text, language) == email


@pytest.mark.parametrize(
    ("text", "language", "service_id"),
    [
        ("Ich hätte gern einen Vorsorgetermin", "de", "checkup"),
        ("eine Grippeimpfung bitte", "de", "vaccination"),
        ("Sprechstunde", "de", "consultation"),
        ("a flu shot", "en", "vaccination"),
        ("eine Vorsorgeuntersuchnug", "de", "checkup"),  # misheard by speech recognition
        ("eine Haartransplantation", "de", None),
    ],
)
def test_find_service_by_name_alias_and_compound(text: str, language: Language, service_id: str | None) -> None:
    profile = load_profile(PROFILES / "praxis.yaml")
    service = find_service(text, profile, language)
    assert (service.id if service else None) == service_id
