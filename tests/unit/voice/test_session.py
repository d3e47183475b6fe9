"""CallSession: greeting, turn-taking and playback tracking, driven through fakes."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.support.fakes_voice import make_call, run_frames
from voicedesk.dialogue.engine import Reply
from voicedesk.voice.frames import AudioOut, ClearOut, MarkOut

HELLO = 700


def kinds(frames: Sequence[object]) -> list[str]:
    """Outbound frame types with runs of audio collapsed: ['AudioOut', 'MarkOut', ...]."""
    out: list[str] = []
    for f in frames:
        name = type(f).__name__
        if not (name == "AudioOut" and out and out[-1] == "AudioOut"):
            out.append(name)
    return out


@pytest.mark.req("R-4.1")
async def test_announce_mode_greets_then_answers_a_turn_sentence_by_sentence() -> None:
    call = make_call(
        consent_mode="announce",
        phrases={HELLO: "I need an appointment."},
        replies={"I need an appointment.": Reply("Sure. Which day suits you?", expects="free")},
    )
    call.caller.start().silence(2000).say(HELLO, 600).silence(3000)
    sent = await run_frames(call)

    # announcement (1 sentence), greeting (1 sentence), reply (2 sentences): audio then a mark each
    assert kinds(sent) == ["AudioOut", "MarkOut"] * 4
    assert call.conversation.greeted == 1
    assert call.conversation.utterances == ["I need an appointment."]
    assert call.tts.sentences == [
        "This call may be recorded.", "Hello, how can I help?", "Sure.", "Which day suits you?"]
    speakers = [(t.speaker, t.text, t.interrupted) for t in call.session.transcript]
    assert speakers == [
        ("assistant", "This call may be recorded.", False),
        ("assistant", "Hello, how can I help?", False),
        ("caller", "I need an appointment.", False),
        ("assistant", "Sure. Which day suits you?", False),
    ]
    assert call.session.transcript[-1].heard_text == "Sure. Which day suits you?"
    assert not any(isinstance(f, ClearOut) for f in sent)
    assert [f.name for f in sent if isinstance(f, MarkOut)] == ["u1-s1", "u2-s2", "u3-s3", "u3-s4"]
    assert sum(isinstance(f, AudioOut) for f in sent) > 4
