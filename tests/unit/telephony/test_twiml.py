import xml.etree.ElementTree as ET

import pytest

from voicedesk.domain.errors import InvalidInputError
from voicedesk.telephony.twilio import twiml

DECL = '<?xml version="1.0" encoding="UTF-8"?>'


def test_connect_stream() -> None:
    xml = twiml.connect_stream(
        "wss://vd.example/twilio/media",
        {"token": "v1.a-b_c.d", "tenant": "acme"},
        action_url="https://vd.example/twilio/stream-ended?call=1&x=2",
    )
    assert xml == (
        DECL + '<Response><Connect action="https://vd.example/twilio/stream-ended?call=1&amp;x=2">'
        '<Stream url="wss://vd.example/twilio/media">'
        '<Parameter name="token" value="v1.a-b_c.d" /><Parameter name="tenant" value="acme" />'
        "</Stream></Connect></Response>"
    )


def test_connect_stream_without_action_and_with_status_callback() -> None:
    xml = twiml.connect_stream(
        "wss://vd.example/twilio/media", {}, status_callback_url="https://vd.example/s", name="vd"
    )
    assert xml == (
        DECL + '<Response><Connect><Stream name="vd" statusCallback="https://vd.example/s" '
        'url="wss://vd.example/twilio/media" /></Connect></Response>'
    )


@pytest.mark.parametrize(
    "url", ["https://vd.example/twilio/media", "wss://vd.example/twilio/media?token=x", "wss://x/m#f"]
)
def test_stream_url_must_be_wss_without_query(url: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        twiml.connect_stream(url, {})
    assert info.value.field == "stream_url"


def test_stream_parameter_size_limit() -> None:
    with pytest.raises(InvalidInputError):
        twiml.connect_stream("wss://vd.example/m", {"token": "x" * 495})


def test_parameter_values_are_escaped() -> None:
    xml = twiml.connect_stream("wss://vd.example/m", {"note": 'a<b>&"c'})
    stream = ET.fromstring(xml.removeprefix(DECL)).find("./Connect/Stream/Parameter")  # noqa: S314
    assert stream is not None
    assert stream.get("value") == 'a<b>&"c'


def test_reject_and_busy() -> None:
    assert twiml.reject() == DECL + '<Response><Reject reason="rejected" /></Response>'
    assert twiml.busy() == DECL + '<Response><Reject reason="busy" /></Response>'


def test_cold_transfer() -> None:
    assert twiml.cold_transfer(
        "+4930123456", caller_id="+4930999000", action_url="https://vd.example/twilio/transfer"
    ) == (
        DECL + '<Response><Dial action="https://vd.example/twilio/transfer" callerId="+4930999000" '
        'method="POST" timeout="20"><Number>+4930123456</Number></Dial></Response>'
    )


def test_warm_transfer_whispers_to_the_callee() -> None:
    assert twiml.warm_transfer(
        "+4930123456", caller_id="+4930999000", action_url="https://vd.example/t",
        whisper_url="https://vd.example/twilio/whisper?call=1", timeout_s=25, time_limit_s=3600,
    ) == (
        DECL + '<Response><Dial action="https://vd.example/t" callerId="+4930999000" method="POST" '
        'timeLimit="3600" timeout="25"><Number method="POST" url="https://vd.example/twilio/whisper?call=1">'
        "+4930123456</Number></Dial></Response>"
    )


@pytest.mark.parametrize(
    ("number", "caller_id", "field"),
    [("030123", "+4930999000", "number"), ("+4930123456", "unknown", "caller_id"),
     ("+49 30 123", "+4930999000", "number"), ("+0301234", "+4930999000", "number")],
)
def test_transfer_needs_e164_numbers(number: str, caller_id: str, field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        twiml.cold_transfer(number, caller_id=caller_id, action_url="https://vd.example/t")
    assert info.value.field == field


def test_transfer_timeout_bounds() -> None:
    with pytest.raises(InvalidInputError):
        twiml.cold_transfer("+4930123456", caller_id="+4930999000", action_url="https://x/t", timeout_s=1)


def test_whisper() -> None:
    assert twiml.whisper("Anruf von Frau Meier wegen einer Terminverschiebung.") == (
        DECL + '<Response><Say language="de-DE">Anruf von Frau Meier wegen einer Terminverschiebung.'
        "</Say></Response>"
    )
    assert twiml.whisper("Call about & <booking>", language="en-US", voice="Polly.Joanna") == (
        DECL + '<Response><Say language="en-US" voice="Polly.Joanna">Call about &amp; &lt;booking&gt;'
        "</Say></Response>"
    )
    assert len(twiml.whisper("x" * 5000)) < 4096 + 100


def test_back_to_assistant_opens_a_new_stream() -> None:
    assert twiml.back_to_assistant(
        "wss://vd.example/twilio/media", {"token": "fresh"}, action_url="https://vd.example/a",
        notice="Leider ist niemand erreichbar.",
    ) == (
        DECL + '<Response><Say language="de-DE">Leider ist niemand erreichbar.</Say>'
        '<Connect action="https://vd.example/a"><Stream url="wss://vd.example/twilio/media">'
        '<Parameter name="token" value="fresh" /></Stream></Connect></Response>'
    )
    assert twiml.back_to_assistant("wss://vd.example/m", {"token": "t"}) == (
        DECL + '<Response><Connect><Stream url="wss://vd.example/m"><Parameter name="token" value="t" />'
        "</Stream></Connect></Response>"
    )


def test_hang_up() -> None:
    assert twiml.hang_up() == DECL + "<Response><Hangup /></Response>"
    assert twiml.say_and_hang_up("Auf Wiederhören.") == (
        DECL + '<Response><Say language="de-DE">Auf Wiederhören.</Say><Hangup /></Response>'
    )


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("completed", "connected"), ("answered", "connected"), ("no-answer", "no-answer"),
     ("busy", "busy"), ("failed", "failed"), ("canceled", "canceled"), ("weird", "failed")],
)
def test_transfer_outcome(status: str, outcome: str) -> None:
    assert twiml.transfer_outcome(status) == outcome
