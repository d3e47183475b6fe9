"""CallSession call control: keys (R-11.2), transfer with fallback, hang-up after the goodbye."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fakes_voice import FakeCall, make_call, run_frames
from voicedesk.dialogue.engine import Action, Reply
from voicedesk.voice.frames import AudioOut, ClearOut, CloseStream, MarkOut

HELLO, HUMAN, BYE, YES = 700, 1000, 1200, 500
PHRASES = {HELLO: "Tell me about prices.", HUMAN: "Can I speak to someone?", BYE: "That's all, bye.",
           YES: "Yes."}
READY_MS = 1300
TRANSFER = Reply(
    "Let me put you through.", intent="human",
    actions=(Action("transfer", {"mode": "warm", "target": "+4930123456", "summary": "prices"}),),
)
GOODBYE = Reply("Goodbye!", intent="goodbye", actions=(Action("end_call"),))


def calls_call(**config: Any) -> FakeCall:
    return make_call(phrases=PHRASES, consent_mode="announce",
                     replies={"Can I speak to someone?": TRANSFER, "That's all, bye.": GOODBYE},
                     **config)


def phase(call: FakeCall) -> str:
    return call.session.phase


def texts(call: FakeCall) -> list[str]:
    return [t.text for t in call.session.transcript]


@pytest.mark.req("R-4.1")
async def test_transfer_waits_for_the_mark_then_falls_back_to_taking_a_message() -> None:
    call = calls_call()
    call.caller.start().silence(READY_MS + 500).say(HUMAN).silence(800)
    await run_frames(call)
    assert call.control.transfers == []  # "Let me put you through." (575 ms) is still playing
    call.caller.frames.clear()
    call.caller.silence(1000)
    await run_frames(call)

    [request] = call.control.transfers
    assert (request.mode, request.target, request.summary) == ("warm", "+4930123456", "prices")
    reply_mark = [f.name for f in call.carrier.sent if isinstance(f, MarkOut)][-1]
    assert reply_mark not in [name for _, name in call.carrier.pending]
    assert phase(call) == "transferring"

    await call.session.transfer_result("no-answer")
    call.caller.frames.clear()
    call.caller.silence(3000)
    await run_frames(call)
    assert call.conversation.transfer_failures == ["no-answer"]
    assert texts(call)[-1] == "Nobody is free right now. May I take a message?"
    assert phase(call) == "conversation"


async def test_transfer_answered_ends_the_session() -> None:
    call = calls_call()
    call.caller.start().silence(READY_MS + 500).say(HUMAN).silence(2000)
    await run_frames(call)
    await call.session.transfer_result("completed")
    assert call.session.phase == "closed"
    assert call.recording.closed


@pytest.mark.req("R-4.1")
async def test_hang_up_only_after_the_goodbye_has_played_and_only_once() -> None:
    call = calls_call()
    call.caller.start().silence(READY_MS + 500).say(BYE).silence(750)
    await run_frames(call)
    assert call.control.hang_ups == 0  # "Goodbye!" (200 ms) sent but not yet played
    call.caller.frames.clear()
    call.caller.silence(400).key("0").stop()
    sent = await run_frames(call)

    assert call.control.hang_ups == 1
    [(what, at)] = call.control.log
    goodbye_played_ms = call.session.transcript[-1].end_ms
    assert what == "hang_up" and at * 1000 >= goodbye_played_ms
    assert isinstance(sent[-1], CloseStream)
    assert call.session.phase == "closed"
    assert call.control.transfers == []  # keys after hang-up do nothing


async def test_hang_up_happens_after_a_timeout_when_the_goodbye_mark_never_returns() -> None:
    call = calls_call(hangup_timeout_ms=1000)
    call.caller.start().silence(READY_MS + 500).say(BYE).silence(700)
    await run_frames(call)
    call.carrier.pending.clear()  # the carrier lost the mark
    call.caller.frames.clear()
    call.caller.silence(1500)
    await run_frames(call)
    assert call.control.hang_ups == 1
    assert call.carrier.closed


@pytest.mark.req("R-11.2")
async def test_key_0_connects_to_a_human() -> None:
    call = calls_call()
    call.caller.start().silence(READY_MS + 500).say(HELLO).silence(1000).key("0").silence(3000)
    sent = await run_frames(call)

    assert any(isinstance(f, ClearOut) for f in sent)  # the reply in progress was cut
    assert "One moment please, I'll connect you with a member of staff." in texts(call)
    [request] = call.control.transfers
    assert request.target is None and request.mode == "cold"


@pytest.mark.req("R-11.2")
async def test_key_9_reads_the_privacy_notice_and_sends_the_link_on_request() -> None:
    call = calls_call()
    call.caller.start().silence(READY_MS + 200).key("9").silence(3000).key("1").silence(2000)
    await run_frames(call)

    notice = "Short privacy notice. Would you like the link by text message? Say yes, or press 1."
    assert notice in texts(call)
    assert call.control.privacy_links == 1
    assert texts(call)[-1] == "Sure, I'll send you the link by text message."
    assert call.conversation.utterances == []


@pytest.mark.req("R-11.2")
async def test_privacy_link_offer_accepted_by_voice() -> None:
    call = calls_call()
    call.caller.start().silence(READY_MS + 200).key("9").silence(3000).say(YES, 400).silence(2000)
    await run_frames(call)
    assert call.control.privacy_links == 1
    assert call.conversation.utterances == []


@pytest.mark.req("R-11.2")
async def test_key_9_during_the_consent_gate_reads_the_notice_then_asks_again() -> None:
    call = make_call(phrases=PHRASES, consent_mode="ask")
    call.caller.start().silence(200).key("9").silence(3000)
    await run_frames(call)
    said = texts(call)
    assert said == ["This call may be recorded.", "Short privacy notice.", "This call may be recorded.",
                    "Do you agree? Say yes or no."]
    assert call.session.transcript[0].interrupted
    assert call.control.privacy_links == 0


async def test_audio_is_sent_as_produced_and_the_stream_stop_closes_the_session() -> None:
    call = calls_call()
    call.caller.start().silence(READY_MS).stop()
    sent = await run_frames(call)
    assert isinstance(sent[0], AudioOut)
    assert call.session.phase == "closed"
    assert call.audio_out_ms() == 650 + 550
