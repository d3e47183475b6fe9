"""PiperTextToSpeech: the real joe voice in its worker process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from voicedesk.domain.errors import ErrorCategory, ProviderError
from voicedesk.voice.stt.whisper import LocalWhisperSpeechToText
from voicedesk.voice.tts.piper import PiperTextToSpeech


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", " ", text.lower()).split()


async def _collect(chunks: AsyncIterator[np.ndarray]) -> list[np.ndarray]:
    return [chunk async for chunk in chunks]


@pytest.fixture
async def piper() -> AsyncIterator[PiperTextToSpeech]:
    tts = PiperTextToSpeech()
    await tts.warm_up()
    yield tts
    await tts.aclose()


@pytest.fixture(scope="module")
def stt() -> Iterator[LocalWhisperSpeechToText]:
    engine = LocalWhisperSpeechToText.english()
    asyncio.run(engine.warm_up())
    yield engine
    engine.close()


@pytest.mark.req("R-6.1")
async def test_piper_speaks_english_that_whisper_understands(piper: PiperTextToSpeech,
                                                             stt: LocalWhisperSpeechToText) -> None:
    text = "Thank you for calling. I have booked your appointment for next Tuesday at 3 p.m."
    chunks = await _collect(piper.synthesize(text, "en"))
    assert len(chunks) == 2  # one chunk per sentence; "p.m." did not end one
    assert all(c.dtype == np.int16 for c in chunks)
    pcm = np.concatenate(chunks)
    assert 3.0 < pcm.size / 8000 < 7.0
    heard = await stt.transcribe(pcm, 8000, "en")
    # piper samples its voice, so renditions differ; Whisper must get nearly all of it
    assert len({"thank", "calling", "booked", "appointment", "tuesday"} & set(_words(heard.text))) >= 4


async def test_piper_abbreviations_do_not_break_sentences(piper: PiperTextToSpeech) -> None:
    chunks = await _collect(piper.synthesize("I booked you with Dr. Miller e.g. at 9 a.m. tomorrow.", "en"))
    assert len(chunks) == 1
    # at the comma it is cut (two clauses), at the abbreviations not
    chunks = await _collect(piper.synthesize("I booked you with Dr. Miller, e.g. at 9 a.m. tomorrow.", "en"))
    assert len(chunks) == 2


async def test_a_long_sentence_starts_with_its_first_clause(piper: PiperTextToSpeech) -> None:
    text = ("Thank you for calling, I have booked your appointment for next Tuesday at three pm, "
            "and I have sent you a confirmation by text message.")
    started = time.perf_counter()
    arrivals: list[float] = []
    chunks: list[np.ndarray] = []
    async for chunk in piper.synthesize(text, "en"):
        arrivals.append(time.perf_counter() - started)
        chunks.append(chunk)
    assert len(chunks) == 3  # "Thank you for calling," first: about a sixth of the audio
    assert chunks[0].size < sum(c.size for c in chunks) / 4
    assert arrivals[0] < arrivals[-1]


async def test_a_short_request_does_not_wait_for_a_long_one_in_the_same_worker() -> None:
    tts = PiperTextToSpeech(workers=1)
    await tts.warm_up()
    try:
        long_reply = ", ".join(f"this is clause number {n}" for n in range(1, 13)) + "."
        order: list[str] = []
        first = asyncio.Event()

        async def long() -> None:
            async for _ in tts.synthesize(long_reply, "en"):
                order.append("long")
                first.set()

        async def short() -> None:
            await first.wait()
            async for _ in tts.synthesize("Yes, of course.", "en"):
                order.append("short")

        await asyncio.gather(long(), short())
        assert order.count("long") == 12 and order.count("short") == 1
        assert order.index("short") <= 3  # it took its turn after at most one more clause
    finally:
        await tts.aclose()


async def test_concurrent_requests_go_to_different_workers(piper: PiperTextToSpeech) -> None:
    assert len(set(piper.pids)) == 2 and None not in piper.pids
    text = "Thank you very much for your call today, we will get back to you soon."
    one, two = piper.synthesize(text, "en"), piper.synthesize(text, "en")
    await anext(one)
    await anext(two)  # the second request did not wait for the first
    assert [w.busy for w in piper._workers] == [1, 1]
    rest = await asyncio.gather(_collect(one), _collect(two))
    assert [len(r) for r in rest] == [1, 1]


async def test_piper_stays_out_of_this_process(piper: PiperTextToSpeech) -> None:
    await _collect(piper.synthesize("Hello.", "en"))
    assert "piper" not in sys.modules  # GPL code runs in the worker only
    assert piper.pid is not None and piper.pid != os.getpid()


async def test_barge_in_cancels_and_the_next_reply_is_clean(piper: PiperTextToSpeech) -> None:
    solo = np.concatenate(await _collect(piper.synthesize("Goodbye.", "en")))
    long_reply = " ".join(f"This is sentence number {n}." for n in range(1, 13))
    got: list[np.ndarray] = []
    first_audio = asyncio.Event()

    async def play() -> None:
        async for chunk in piper.synthesize(long_reply, "en"):
            got.append(chunk)
            first_audio.set()

    task = asyncio.create_task(play())
    await first_audio.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(got) < 12
    after = np.concatenate(await _collect(piper.synthesize("Goodbye.", "en")))
    # No leftover sentence of the cancelled reply arrives with the next one.
    assert abs(after.size - solo.size) < 800


async def test_concurrent_requests_each_get_their_own_audio(piper: PiperTextToSpeech) -> None:
    a, b = await asyncio.gather(_collect(piper.synthesize("Yes.", "en")),
                                _collect(piper.synthesize("Thank you very much for your call today.", "en")))
    assert len(a) == len(b) == 1
    assert a[0].size < b[0].size / 2


async def test_a_dead_worker_is_restarted_by_the_next_request(piper: PiperTextToSpeech) -> None:
    pid = piper.pids[0]
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    for _ in range(200):
        if piper.pids[0] is None:
            break
        await asyncio.sleep(0.01)
    chunks: list[np.ndarray] = []
    try:
        chunks = await _collect(piper.synthesize("Hello again.", "en"))
    except ProviderError as exc:  # the request that found the worker dying
        assert exc.category is ErrorCategory.SERVER
        chunks = await _collect(piper.synthesize("Hello again.", "en"))
    assert chunks and piper.pids[0] not in (None, pid)


async def test_aclose_ends_the_worker_processes(piper: PiperTextToSpeech) -> None:
    pids = piper.pids
    assert None not in pids
    await piper.aclose()
    assert piper.pid is None
    for pid in pids:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(ProviderError) as info:
        await _collect(piper.synthesize("Hello.", "en"))
    assert info.value.category is ErrorCategory.UNAVAILABLE


async def test_piper_failures_are_provider_errors(tmp_path: Path) -> None:
    tts = PiperTextToSpeech()
    with pytest.raises(ProviderError) as info:
        await _collect(tts.synthesize("Hallo.", "de"))
    assert info.value.category is ErrorCategory.BAD_REQUEST
    broken = PiperTextToSpeech(model_path=tmp_path / "missing.onnx", config_path=tmp_path / "missing.json")
    with pytest.raises(ProviderError) as info:
        await broken.warm_up()
    assert info.value.category is ErrorCategory.UNAVAILABLE
    await broken.aclose()
    nopython = PiperTextToSpeech(python=str(tmp_path / "no-such-python"))
    with pytest.raises(ProviderError) as info:
        await nopython.warm_up()
    assert info.value.category is ErrorCategory.UNAVAILABLE
    await tts.aclose()
    await nopython.aclose()
