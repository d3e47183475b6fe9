"""μ-law against CPython's audioop (while it exists) and the polyphase resampler."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

from tests.support.audio import tone
from voicedesk.voice.codecs import resample, ulaw_decode, ulaw_encode

ALL_PCM = np.arange(-32768, 32768, dtype=np.int16)
ALL_ULAW = bytes(range(256))


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="audioop was removed in Python 3.13")
def test_ulaw_is_bit_identical_to_audioop_for_every_input() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
        import audioop

    assert ulaw_encode(ALL_PCM) == audioop.lin2ulaw(ALL_PCM.astype("<i2").tobytes(), 2)
    expected = np.frombuffer(audioop.ulaw2lin(ALL_ULAW, 2), dtype="<i2")
    assert np.array_equal(ulaw_decode(ALL_ULAW), expected)


def test_ulaw_decode_then_encode_is_lossless() -> None:
    # 0x7F is "negative zero": it decodes to 0, which encodes as 0xFF.
    assert ulaw_encode(ulaw_decode(ALL_ULAW)) == ALL_ULAW[:127] + b"\xff" + ALL_ULAW[128:]


def test_ulaw_round_trip_error_is_bounded() -> None:
    decoded = ulaw_decode(ulaw_encode(ALL_PCM)).astype(np.int32)
    err = np.abs(decoded - ALL_PCM.astype(np.int32))
    # G.711 μ-law: the quantisation step grows with magnitude, at most 1/16 of it.
    assert int(err.max()) <= 1024
    assert np.all(err <= np.maximum(8, np.abs(ALL_PCM.astype(np.int32)) // 16 + 8))


def test_ulaw_handles_empty_input() -> None:
    assert ulaw_encode(np.zeros(0, dtype=np.int16)) == b""
    assert ulaw_decode(b"").size == 0


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000), (22050, 8000), (24000, 8000)])
def test_resample_output_length(src: int, dst: int) -> None:
    for n in (1, 7, 160, src):
        out = resample(np.ones(n, dtype=np.int16), src, dst)
        assert out.dtype == np.int16
        assert out.size == -(-n * dst // src)


def test_resample_same_rate_and_empty_are_passthrough() -> None:
    pcm = tone(440, 20)
    assert resample(pcm, 8000, 8000) is pcm
    assert resample(np.zeros(0, dtype=np.int16), 8000, 16000).size == 0


def _level_at(pcm: np.ndarray, rate: int, freq: float) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64) * np.hanning(pcm.size)))
    bins = np.fft.rfftfreq(pcm.size, 1 / rate)
    return float(spectrum[np.argmin(np.abs(bins - freq))])


def test_resample_keeps_a_passband_tone_in_place_and_at_level() -> None:
    t = np.arange(22050) / 22050
    pcm = np.rint(10000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    out = resample(pcm, 22050, 8000)
    peak = np.fft.rfftfreq(out.size, 1 / 8000)[np.argmax(np.abs(np.fft.rfft(out.astype(np.float64))))]
    assert abs(peak - 1000) < 2
    rms_in = np.sqrt(np.mean(pcm.astype(np.float64) ** 2))
    rms_out = np.sqrt(np.mean(out[100:-100].astype(np.float64) ** 2))
    assert abs(rms_out / rms_in - 1) < 0.02


def test_resample_down_removes_content_above_the_new_nyquist() -> None:
    t = np.arange(22050) / 22050
    pcm = np.rint(10000 * np.sin(2 * np.pi * 6000 * t)).astype(np.int16)  # would alias to 2 kHz
    out = resample(pcm, 22050, 8000)
    assert np.sqrt(np.mean(out.astype(np.float64) ** 2)) < 100  # > 40 dB down


def test_resample_up_then_down_returns_the_signal() -> None:
    pcm = tone(700, 500, dbfs=-6)
    back = resample(resample(pcm, 8000, 16000), 16000, 8000)
    assert back.size == pcm.size
    assert np.max(np.abs(back[50:-50].astype(np.int32) - pcm[50:-50])) < 200
