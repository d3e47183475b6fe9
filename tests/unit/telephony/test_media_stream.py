import base64
import json
import random

import numpy as np
import pytest

from voicedesk.telephony.twilio.media_stream import DropReason, TwilioMediaSerializer
from voicedesk.voice.codecs import ulaw_decode
from voicedesk.voice.frames import (
    AudioIn,
    AudioOut,
    ClearOut,
    CloseStream,
    KeyPressed,
    MarkOut,
    PlaybackMarked,
    StreamStarted,
    StreamStopped,
)

CONNECTED = '{"event":"connected","protocol":"Call","version":"1.0.0"}'
START = (
    '{"event":"start","sequenceNumber":"1","streamSid":"MZ11111111111111111111111111111111",'
    '"start":{"accountSid":"AC22222222222222222222222222222222",'
    '"streamSid":"MZ11111111111111111111111111111111","callSid":"CA33333333333333333333333333333333",'
    '"tracks":["inbound"],"customParameters":{"token":"v1.abc.def","tenant":"acme"},'
    '"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}'
)
SID = "MZ11111111111111111111111111111111"


def media(seq: int, timestamp: int, payload: bytes = b"\xff" * 160, chunk: int | None = None) -> str:
    return json.dumps({
        "event": "media", "sequenceNumber": str(seq), "streamSid": SID,
        "media": {"track": "inbound", "chunk": str(chunk or seq - 1), "timestamp": str(timestamp),
                  "payload": base64.b64encode(payload).decode()},
    })


def started() -> TwilioMediaSerializer:
    s = TwilioMediaSerializer()
    assert s.parse(CONNECTED) is None
    assert isinstance(s.parse(START), StreamStarted)
    return s


def test_connected_then_start_yields_stream_started_with_parameters() -> None:
    s = TwilioMediaSerializer()
    assert s.parse(CONNECTED) is None
    assert s.connected
    frame = s.parse(START)
    assert frame == StreamStarted(
        stream_id=SID, call_sid="CA33333333333333333333333333333333",
        custom_parameters={"token": "v1.abc.def", "tenant": "acme"},
    )
    assert s.stream_sid == SID
    assert s.account_sid == "AC22222222222222222222222222222222"
    assert s.custom_parameters == {"token": "v1.abc.def", "tenant": "acme"}
    assert s.counters.dropped_total == 0


def test_media_is_decoded_to_pcm_with_timestamp() -> None:
    s = started()
    payload = bytes(range(160))
    frame = s.parse(
        '{"event":"media","sequenceNumber":"2","streamSid":"' + SID + '","media":{"track":"inbound",'
        '"chunk":"1","timestamp":"40","payload":"' + base64.b64encode(payload).decode() + '"}}'
    )
    assert isinstance(frame, AudioIn)
    assert frame.timestamp_ms == 40
    assert frame.pcm.dtype == np.int16
    np.testing.assert_array_equal(frame.pcm, ulaw_decode(payload))
    assert s.counters.media_in == 1
    assert s.counters.media_in_bytes == 160


@pytest.mark.parametrize("size", [1, 7, 160, 321, 8000, 80_000])
def test_any_payload_size_is_accepted(size: int) -> None:
    s = started()
    frame = s.parse(media(2, 0, b"\x7f" * size))
    assert isinstance(frame, AudioIn)
    assert frame.pcm.shape == (size,)


def test_dtmf_mark_and_stop() -> None:
    s = started()
    assert s.parse(
        '{"event":"dtmf","sequenceNumber":"2","streamSid":"' + SID + '",'
        '"dtmf":{"track":"inbound_track","digit":"1"}}'
    ) == KeyPressed(digit="1")
    assert s.parse(
        '{"event":"mark","sequenceNumber":"3","streamSid":"' + SID + '","mark":{"name":"utt-7-part-3"}}'
    ) == PlaybackMarked(name="utt-7-part-3")
    assert s.parse(
        '{"event":"stop","sequenceNumber":"4","streamSid":"' + SID + '",'
        '"stop":{"accountSid":"AC22222222222222222222222222222222","callSid":"CA33333333333333333333333333333333"}}'
    ) == StreamStopped()
    assert s.stopped
    assert s.parse(media(5, 100)) is None
    assert s.counters.dropped == {DropReason.AFTER_STOP: 1}


def test_stop_before_start_still_ends_the_stream() -> None:
    s = TwilioMediaSerializer()
    assert s.parse('{"event":"stop","sequenceNumber":"1"}') == StreamStopped()
    assert s.stopped


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("not json", DropReason.BAD_JSON),
        (b"\xff\xfe\x00", DropReason.BAD_JSON),
        ("[1, 2]", DropReason.BAD_JSON),
        ('"media"', DropReason.BAD_JSON),
        ('{"event":"nonsense"}', DropReason.UNKNOWN_EVENT),
        ('{"sequenceNumber":"2"}', DropReason.UNKNOWN_EVENT),
        ('{"event":"media","sequenceNumber":"2","streamSid":"' + SID + '"}', DropReason.MISSING_FIELD),
        ('{"event":"media","sequenceNumber":"2","media":{"timestamp":"0"}}', DropReason.MISSING_FIELD),
        ('{"event":"media","sequenceNumber":"2","media":{"payload":"!!!!","timestamp":"0"}}',
         DropReason.BAD_BASE64),
        ('{"event":"media","sequenceNumber":"2","media":{"payload":"/w=","timestamp":"0"}}',
         DropReason.BAD_BASE64),
        ('{"event":"media","sequenceNumber":"2","media":{"payload":"ä","timestamp":"0"}}',
         DropReason.BAD_BASE64),
        ('{"event":"media","sequenceNumber":"2","media":{"payload":"","timestamp":"0"}}',
         DropReason.EMPTY_PAYLOAD),
        ('{"event":"media","sequenceNumber":"2","media":{"payload":"/w==","timestamp":"-5"}}',
         DropReason.BAD_FIELD),
        ('{"event":"media","sequenceNumber":"x","media":{"payload":"/w==","timestamp":"0"}}',
         DropReason.BAD_FIELD),
        ('{"event":"media","sequenceNumber":true,"media":{"payload":"/w==","timestamp":"0"}}',
         DropReason.BAD_FIELD),
        ('{"event":"media","sequenceNumber":"2","media":{"track":"outbound","payload":"/w==",'
         '"timestamp":"0"}}', DropReason.WRONG_TRACK),
        ('{"event":"media","sequenceNumber":"2","streamSid":"MZother","media":{"payload":"/w==",'
         '"timestamp":"0"}}', DropReason.WRONG_STREAM),
        ('{"event":"dtmf","sequenceNumber":"2","dtmf":{"digit":"x"}}', DropReason.BAD_FIELD),
        ('{"event":"dtmf","sequenceNumber":"2","dtmf":{}}', DropReason.MISSING_FIELD),
        ('{"event":"dtmf","sequenceNumber":"2"}', DropReason.MISSING_FIELD),
        ('{"event":"mark","sequenceNumber":"2","mark":{"name":""}}', DropReason.MISSING_FIELD),
        ('{"event":"mark","sequenceNumber":"2","mark":"x"}', DropReason.MISSING_FIELD),
        ('{"event":"media","sequenceNumber":"1","media":{"payload":"/w==","timestamp":"0"}}',
         DropReason.OUT_OF_ORDER),
        ('{"event":"media","sequenceNumber":"99999","media":{"payload":"/w==","timestamp":"0"}}',
         DropReason.SEQUENCE_JUMP),
        (START, DropReason.DUPLICATE_START),
    ],
)
def test_malformed_messages_are_dropped_and_counted(message: str | bytes, reason: DropReason) -> None:
    s = started()
    assert s.parse(message) is None
    assert s.counters.dropped == {reason: 1}
    assert isinstance(s.parse(media(2, 0)), AudioIn)


def test_messages_before_start_are_dropped() -> None:
    s = TwilioMediaSerializer()
    assert s.parse(media(2, 0)) is None
    assert s.parse('{"event":"dtmf","dtmf":{"digit":"1"}}') is None
    assert s.counters.dropped == {DropReason.BEFORE_START: 2}


@pytest.mark.parametrize(
    "start",
    [
        '{"event":"start","sequenceNumber":"1","start":{"callSid":"CA1"}}',
        '{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{}}',
        '{"event":"start","sequenceNumber":"1","streamSid":"MZ1"}',
        '{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"callSid":"CA1",'
        '"customParameters":{"token":1}}}',
        '{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"callSid":"CA1",'
        '"mediaFormat":{"encoding":"audio/l16","sampleRate":16000}}}',
    ],
)
def test_unusable_start_is_dropped_and_stream_stays_unstarted(start: str) -> None:
    s = TwilioMediaSerializer()
    assert s.parse(start) is None
    assert not s.started
    assert s.counters.dropped_total == 1


def test_stale_timestamp_is_out_of_order_and_gaps_are_counted() -> None:
    s = started()
    assert isinstance(s.parse(media(2, 100)), AudioIn)
    assert s.parse(media(3, 80)) is None
    assert isinstance(s.parse(media(6, 120)), AudioIn)
    assert s.counters.dropped == {DropReason.OUT_OF_ORDER: 1}
    assert s.counters.sequence_gaps == 3


def test_missing_timestamp_continues_from_audio_received() -> None:
    s = started()
    s.parse(media(2, 0, b"\xff" * 160))
    frame = s.parse(json.dumps({"event": "media", "sequenceNumber": "3", "media": {"payload": "/w" * 80}}))
    assert isinstance(frame, AudioIn)
    assert frame.timestamp_ms == 20


def test_oversized_message_is_dropped() -> None:
    s = TwilioMediaSerializer(max_message_chars=1000)
    assert s.parse("{" + " " * 2000 + "}") is None
    assert s.counters.dropped == {DropReason.TOO_LARGE: 1}


@pytest.mark.req("R-10.3")
def test_thousand_malformed_and_out_of_order_messages_do_not_stop_audio() -> None:
    rng = random.Random(7)
    s = started()
    garbage = [
        ("not json at all", DropReason.BAD_JSON),
        ('{"event":"bogus","sequenceNumber":"1"}', DropReason.UNKNOWN_EVENT),
        ('{"event":"media","media":{"timestamp":"0"}}', DropReason.MISSING_FIELD),
        ('{"event":"media","media":{"payload":"%%%","timestamp":"0"}}', DropReason.BAD_BASE64),
        (START, DropReason.DUPLICATE_START),
        ('{"event":"media","sequenceNumber":"10000000","media":{"payload":"/w==","timestamp":"99999999"}}',
         DropReason.SEQUENCE_JUMP),
    ]
    expected = dict.fromkeys(DropReason, 0)
    seq, ts = 1, 0
    audio_frames = 0
    sent_valid: list[str] = []
    for i in range(1000):
        if i % 3 == 0:
            # replay an earlier valid message: same sequence number, so it is stale
            if sent_valid:
                assert s.parse(rng.choice(sent_valid)) is None
                expected[DropReason.OUT_OF_ORDER] += 1
            else:
                assert s.parse("{") is None
                expected[DropReason.BAD_JSON] += 1
        else:
            text, reason = rng.choice(garbage)
            assert s.parse(text) is None
            expected[reason] += 1
        seq += 1
        ts += 20
        valid = media(seq, ts, bytes([rng.randrange(256) for _ in range(160)]))
        frame = s.parse(valid)
        assert isinstance(frame, AudioIn), i
        assert frame.timestamp_ms == ts
        sent_valid.append(valid)
        audio_frames += 1
    assert audio_frames == 1000
    assert s.counters.media_in == 1000
    assert s.counters.media_in_bytes == 160_000
    assert s.counters.dropped_total == 1000
    assert {r: n for r, n in s.counters.dropped.items() if n} == {r: n for r, n in expected.items() if n}
    assert s.counters.sequence_gaps == 0
    metrics = s.counters.as_metrics()
    assert metrics["dropped_total"] == 1000
    assert metrics["messages_in"] == 2002
    assert metrics["dropped_out_of_order"] == expected[DropReason.OUT_OF_ORDER]


def test_outbound_audio_is_chunked_base64_ulaw() -> None:
    s = started()
    pcm = (np.sin(np.arange(20_000) / 5) * 8000).astype(np.int16)
    messages = s.serialize(AudioOut(pcm=pcm))
    assert len(messages) == 3
    decoded = [json.loads(m) for m in messages]
    assert all(m["event"] == "media" and m["streamSid"] == SID for m in decoded)
    assert set(decoded[0]) == {"event", "streamSid", "media"}
    chunks = [base64.b64decode(m["media"]["payload"]) for m in decoded]
    assert [len(c) for c in chunks] == [8000, 8000, 4000]
    roundtrip = ulaw_decode(b"".join(chunks))
    assert np.max(np.abs(roundtrip.astype(np.int32) - pcm)) < 300
    assert s.counters.media_out == 3
    assert s.counters.media_out_bytes == 20_000


def test_outbound_mark_clear_close_and_raw_ulaw() -> None:
    s = started()
    assert s.serialize(MarkOut(name="utt-1")) == [
        '{"event":"mark","streamSid":"' + SID + '","mark":{"name":"utt-1"}}'
    ]
    assert s.serialize(ClearOut()) == ['{"event":"clear","streamSid":"' + SID + '"}']
    assert s.serialize(CloseStream()) == []
    assert s.serialize_ulaw(b"\xff\x7f") == [
        '{"event":"media","streamSid":"' + SID + '","media":{"payload":"/38="}}'
    ]
    assert s.serialize_ulaw(b"") == []
    c = s.counters
    assert (c.marks_out, c.clears_out, c.media_out, c.messages_out) == (1, 1, 1, 3)


def test_small_chunk_size_is_configurable() -> None:
    s = TwilioMediaSerializer(max_chunk_bytes=160)
    s.parse(START)
    assert len(s.serialize_ulaw(b"\xff" * 481)) == 4


def test_sending_before_start_is_a_programming_error() -> None:
    s = TwilioMediaSerializer()
    with pytest.raises(RuntimeError, match="StreamStarted"):
        s.serialize(MarkOut(name="x"))
