from __future__ import annotations

import pytest

from voicedesk.voice.stt.whisper import collapse_repeats


@pytest.mark.parametrize(("heard", "kept"), [
    ("Termin Termin", "Termin"),
    ("Labor, Labor", "Labor"),
    ("Thomas Tag, Thomas Tag", "Thomas Tag"),
    ("Mein Name ist Anna. Mein Name ist Anna.", "Mein Name ist Anna."),
    ("ja ja ja", "ja"),
])
def test_a_transcript_made_of_one_repeated_phrase_is_said_once(heard: str, kept: str) -> None:
    assert collapse_repeats(heard) == kept


@pytest.mark.parametrize("heard", [
    "Donnerstag,", "Ja.", "I would like to book an oil change.", "",
    "Can I speak to someone, please? Can I think to someone please",
])
def test_other_transcripts_are_left_alone(heard: str) -> None:
    assert collapse_repeats(heard) == heard
