"""The small parts a CallSession is built from: sentence splitting, backchannels, playback marks."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.fakes_voice import Caller, make_call
from voicedesk.domain.profile import TenantProfile
from voicedesk.voice.frames import InboundFrame
from voicedesk.voice.playback import Playback
from voicedesk.voice.prompts import CallTexts
from voicedesk.voice.sentences import is_backchannel, split_sentences


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Gern. Wann passt es Ihnen?", ["Gern.", "Wann passt es Ihnen?"]),
        ("Ihr Termin bei Dr. Weber ist am 3. Mai um 10 Uhr. Passt das?",
         ["Ihr Termin bei Dr. Weber ist am 3. Mai um 10 Uhr.", "Passt das?"]),
        ("Bitte bringen Sie z. B. Ihre Karte mit! Danke.", ["Bitte bringen Sie z. B. Ihre Karte mit!", "Danke."]),
        ("One moment…  Done!", ["One moment…", "Done!"]),
        ("no punctuation at all", ["no punctuation at all"]),
        ("", []),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


@pytest.mark.parametrize("text", ["mhm", "Mhm.", "ja", "Ja, ja.", "okay", "uh-huh", "Genau.", "yeah right", ""])
def test_backchannels(text: str) -> None:
    assert is_backchannel(text)


@pytest.mark.parametrize("text", ["Ja, am Dienstag", "okay but not Friday", "nein", "stop", "ja ja ja ja"])
def test_not_backchannels(text: str) -> None:
    assert not is_backchannel(text)


def test_playback_counts_marks_echoed_before_a_clear_as_played() -> None:
    pb = Playback(8000)
    start = pb.audio_sent(8000, now_ms=0)  # 1 s
    a = pb.mark_sent(1, "One two three four.", 8000, start)
    start = pb.audio_sent(16000, now_ms=10)  # 2 s, queued behind the first
    assert start == 1000
    b = pb.mark_sent(1, "Five six seven eight nine ten.", 16000, start)
    assert pb.echoed("unknown", 500) == []
    assert [m.name for m in pb.echoed(a, 1000)] == [a]
    flushed, cut = pb.clear(2000)
    assert [m.name for m in flushed] == [b]
    assert cut is not None and cut.fraction == pytest.approx(0.5)
    assert cut.heard_words() == "Five six seven"
    assert pb.echoed(b, 2000) == []  # the echo that clear causes is not "played"
    assert pb.pending == ()


async def test_run_consumes_a_queue_until_none_and_closes() -> None:
    call = make_call(consent_mode="announce")
    queue: asyncio.Queue[InboundFrame | None] = asyncio.Queue()
    for frame in Caller().start().silence(100).frames:
        queue.put_nowait(frame)
    queue.put_nowait(None)
    await call.session.run(queue)
    assert call.session.phase == "closed"
    assert [d.decision for d in call.consents.decisions] == ["refused", "refused"]  # ended mid-announcement


@pytest.mark.req("R-4.2")
def test_call_texts_come_from_the_profile_in_the_call_language() -> None:
    profile = TenantProfile(slug="praxis-weber", name="Praxis Weber", opening_hours={})
    texts = CallTexts.for_profile(profile, "en", text_version="announcement-en-2")
    assert texts.consent.version == "announcement-en-2"
    assert texts.consent.announcement.startswith("This call is answered by an AI assistant")
    assert texts.consent.question.startswith("Do you agree to the recording?")
    assert "the controller is Praxis Weber" in texts.privacy_notice
    assert texts.phrases.connect_human.startswith("One moment")
    assert CallTexts.for_profile(profile, "de", text_version="v").phrases.sorry_repeat.startswith("Entschuldigung")
