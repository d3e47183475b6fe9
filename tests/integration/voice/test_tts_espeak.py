"""EspeakTextToSpeech: the Debian espeak-ng binary as a subprocess (German voice)."""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from voicedesk.domain.errors import ErrorCategory, ProviderError
from voicedesk.voice.tts.espeak import EspeakTextToSpeech, parse_wav


async def _collect(chunks: AsyncIterator[np.ndarray]) -> list[np.ndarray]:
    return [chunk async for chunk in chunks]


@pytest.mark.req("R-6.1")
async def test_espeak_speaks_german_sentence_by_sentence() -> None:
    tts = EspeakTextToSpeech()
    await tts.warm_up()
    text = "Vielen Dank für Ihren Anruf. Ihr Termin ist am 3. März um 15.30 Uhr bei Dr. Weber."
    chunks = await _collect(tts.synthesize(text, "de"))
    assert len(chunks) == 2  # "3." and "Dr." do not end a sentence
    assert all(c.dtype == np.int16 and c.size > 8000 for c in chunks)
    assert np.abs(np.concatenate(chunks).astype(np.int32)).max() > 3000


async def test_espeak_first_audio_is_fast() -> None:
    tts = EspeakTextToSpeech()
    loop = asyncio.get_running_loop()
    times = []
    for _ in range(3):
        started = loop.time()
        async for _ in tts.synthesize("Guten Tag, hier ist die Praxis.", "de"):
            times.append(loop.time() - started)
            break
    assert min(times) < 0.3  # speech.md: 11-15 ms


async def test_espeak_empty_or_markup_only_text_yields_nothing() -> None:
    assert await _collect(EspeakTextToSpeech().synthesize(" ** \n ", "de")) == []


async def test_espeak_text_is_never_taken_as_an_option() -> None:
    chunks = await _collect(EspeakTextToSpeech().synthesize("--version -v en", "de"))
    assert len(chunks) == 1 and chunks[0].size > 4000


async def test_espeak_failures_are_provider_errors(tmp_path: Path) -> None:
    with pytest.raises(ProviderError) as info:
        await _collect(EspeakTextToSpeech().synthesize("Hallo.", "fr"))
    assert info.value.category is ErrorCategory.BAD_REQUEST
    missing = EspeakTextToSpeech(executable=str(tmp_path / "espeak-ng"))
    with pytest.raises(ProviderError) as info:
        await missing.warm_up()
    assert info.value.category is ErrorCategory.UNAVAILABLE
    # espeak-ng itself would fall back to English for an unknown voice; warm_up refuses it.
    bad_voice = EspeakTextToSpeech(voices={"de": "no-such-voice"})
    with pytest.raises(ProviderError) as info:
        await bad_voice.warm_up()
    assert info.value.category is ErrorCategory.UNAVAILABLE


async def test_cancelled_synthesis_leaves_no_process_behind() -> None:
    tts = EspeakTextToSpeech()
    long_text = " ".join(["Das ist ein ziemlich langer Satz über nichts Besonderes."] * 40)

    async def speak() -> None:
        async for _ in tts.synthesize(long_text, "de"):
            pass

    task = asyncio.create_task(speak())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Any process started for it was killed and reaped: no espeak-ng child remains.
    proc = await asyncio.create_subprocess_exec("pgrep", "-P", str(os.getpid()), "espeak-ng",
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert out.strip() == b""


def test_parse_wav_reads_espeak_streaming_header() -> None:
    samples = np.array([0, 1000, -1000, 32767], dtype="<i2").tobytes()
    header = (b"RIFF" + struct.pack("<I", 0x7FFFF024) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
              + struct.pack("<HHIIHH", 1, 1, 22050, 44100, 2, 16) + b"data" + struct.pack("<I", 0x7FFFF000))
    pcm, rate = parse_wav(header + samples + b"\x01")  # a stray odd byte is ignored
    assert rate == 22050 and pcm.tolist() == [0, 1000, -1000, 32767]
    with pytest.raises(ValueError):
        parse_wav(b"RIFF\x00\x00\x00\x00WAVEdata")
