"""LocalMoonshineSpeechToText and the one-time conversion, with the real weights from moonshine-cpp.

Run with ``OPENBLAS_NUM_THREADS=1`` (the service's setting). The conversion runs once per
module (a few seconds, about 1 GB of memory).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.audio import noise, silence, synth_pcm8k
from voicedesk.domain.errors import ConfigError, ErrorCategory, ProviderError
from voicedesk.voice.stt import moonshine_convert
from voicedesk.voice.stt.moonshine import (
    LocalMoonshineSpeechToText,
    detokenize,
    load_tokenizer,
    max_tokens,
)


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", " ", text.lower()).split()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return moonshine_convert.convert_moonshine_base(tmp_path_factory.mktemp("models") / "moonshine-base").target


@pytest.fixture(scope="module")
def english(model_dir: Path) -> Iterator[LocalMoonshineSpeechToText]:
    stt = LocalMoonshineSpeechToText.english(model_dir)
    asyncio.run(stt.warm_up())
    yield stt
    stt.close()


# Phrases that survive espeak → 8 kHz μ-law → Moonshine base (bench/stt_compare.py: WER 0 here).
ENGLISH = [
    "I need to cancel my appointment on Friday morning",
    "Yes, that works for me, thank you very much",
    "Can I speak to someone please",
    "Is there a parking space near your office",
]


def test_conversion_writes_a_stamped_model_and_is_idempotent(model_dir: Path) -> None:
    assert sorted(p.name for p in model_dir.iterdir()) == [
        moonshine_convert.DECODER, moonshine_convert.ENCODER, moonshine_convert.TOKENIZER, moonshine_convert.STAMP]
    stamp = json.loads((model_dir / moonshine_convert.STAMP).read_text())
    assert stamp["source_sha256"] == moonshine_convert.SOURCE_SHA256
    assert moonshine_convert.is_converted(model_dir)
    mtime = (model_dir / moonshine_convert.DECODER).stat().st_mtime_ns
    again = moonshine_convert.convert_moonshine_base(model_dir)
    assert not again.converted and again.target == model_dir
    assert (model_dir / moonshine_convert.DECODER).stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_conversion_quantizes_every_constant_matmul(tmp_path: Path, model_dir: Path) -> None:
    # A damaged model (here: truncated) is detected by size and converted again.
    target = tmp_path / "moonshine-base"
    shutil.copytree(model_dir, target)
    with open(target / moonshine_convert.DECODER, "r+b") as f:
        f.truncate(1000)
    assert not moonshine_convert.is_converted(target)
    report = moonshine_convert.convert_moonshine_base(target)
    assert report.converted
    # encoder 48 + decoder 2 × (72 + output projection): no float MatMul on a weight is left.
    assert report.quantized_matmuls == 194
    assert report.folded_nodes > 0
    assert (target / moonshine_convert.DECODER).stat().st_size == (model_dir / moonshine_convert.DECODER).stat().st_size
    print(f"\nconversion: {report.seconds:.1f} s")  # noqa: T201


def test_blockwise_quantization_round_trips_within_half_a_step() -> None:
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.05, (70, 5)).astype(np.float32)  # K not a multiple of the block size
    packed, scales = moonshine_convert.quantize_blockwise(weight, 32)
    assert packed.shape == (5, 3, 32) and packed.dtype == np.uint8 and scales.shape == (15,)
    restored = ((packed.astype(np.float32) - 128) * scales.reshape(5, 3, 1)).reshape(5, 96).T[:70]
    assert np.all(np.abs(restored - weight) <= scales.reshape(5, 3).max() / 2 + 1e-7)


def test_missing_package_is_a_config_error(tmp_path: Path) -> None:
    # Another source location stands in for an uninstalled package (no patching).
    with pytest.raises(ConfigError, match="moonshine-cpp"):
        moonshine_convert.check_source(tmp_path)


def test_tokenizer_decodes_words_and_byte_tokens(model_dir: Path) -> None:
    tokens = load_tokenizer(model_dir / moonshine_convert.TOKENIZER)
    assert len(tokens) == 32_000 and tokens[1] == b"<s>" and tokens[2] == b"</s>"
    word = next(i for i, t in enumerate(tokens) if t == "\u2581their".encode())
    # "é" as the byte-fallback tokens 0xC3 0xA9 (ids 3 + byte value).
    assert detokenize(tokens, [1, word, 3 + 0xC3, 3 + 0xA9, 2]) == "theiré"


def test_max_tokens_guard() -> None:
    assert [max_tokens(s) for s in (0.0, 2.0, 2.1, 30.0)] == [9, 25, 26, 200]


@pytest.mark.req("R-3.2")
@pytest.mark.req("R-6.1")
@pytest.mark.parametrize("phrase", ENGLISH)
async def test_english_turn_is_transcribed_offline(english: LocalMoonshineSpeechToText, phrase: str) -> None:
    pcm = synth_pcm8k(phrase, "en")
    result = await english.transcribe(pcm, 8000, "en")
    print(f"\n{phrase!r}: {result.compute_seconds * 1000:.0f} ms for {result.audio_seconds:.1f} s, "  # noqa: T201
          f"{english.last_token_count} tokens")
    assert _words(result.text) == _words(phrase)
    assert result.language == "en"
    assert result.audio_seconds == pytest.approx(pcm.size / 8000)
    assert 0 < result.compute_seconds < 3.0
    assert english.last_token_count <= max_tokens(result.audio_seconds)


async def test_silence_and_quiet_line_noise_give_no_text(english: LocalMoonshineSpeechToText) -> None:
    # Moonshine itself says "You" on noise (speech.md); the level gate keeps quiet turns away from it.
    for pcm in (silence(1500), noise(1500, dbfs=-50), silence(0)):
        assert (await english.transcribe(pcm, 8000, "en")).text == ""


async def test_very_short_turn_is_padded_not_rejected(english: LocalMoonshineSpeechToText) -> None:
    pcm = synth_pcm8k("Yes", "en")[:800]  # 100 ms
    result = await english.transcribe(pcm, 8000, "en")
    assert isinstance(result.text, str)
    assert english.last_token_count <= max_tokens(0.1)


async def test_wrong_language_and_closed_engine_are_provider_errors(model_dir: Path) -> None:
    stt = LocalMoonshineSpeechToText(model_dir)
    with pytest.raises(ProviderError) as info:
        await stt.transcribe(silence(100), 8000, "de")
    assert info.value.category is ErrorCategory.BAD_REQUEST and info.value.is_permanent
    with pytest.raises(ProviderError) as info:
        await stt.transcribe(silence(100), 0, "en")
    assert info.value.category is ErrorCategory.BAD_REQUEST
    stt.close()
    with pytest.raises(ProviderError) as info:
        await stt.transcribe(synth_pcm8k("Yes", "en"), 8000, "en")
    assert info.value.category is ErrorCategory.UNAVAILABLE


async def test_unconverted_or_damaged_model_is_an_unavailable_provider(tmp_path: Path, model_dir: Path) -> None:
    stt = LocalMoonshineSpeechToText(tmp_path / "nowhere")
    with pytest.raises(ProviderError) as info:
        await stt.warm_up()
    assert info.value.category is ErrorCategory.UNAVAILABLE
    stt.close()
    # Right stamp and sizes, broken content: onnxruntime's own error is mapped.
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    size = (broken / moonshine_convert.ENCODER).stat().st_size
    (broken / moonshine_convert.ENCODER).write_bytes(b"\0" * size)
    stt = LocalMoonshineSpeechToText(broken)
    with pytest.raises(ProviderError) as info:
        await stt.warm_up()
    assert info.value.category is ErrorCategory.UNAVAILABLE and "cannot load" in info.value.msg
    stt.close()


def test_unwritable_target_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="cannot convert"):
        moonshine_convert.convert_moonshine_base(blocker / "moonshine-base")


async def test_cancelled_caller_drops_its_queued_turn(english: LocalMoonshineSpeechToText) -> None:
    pcm = synth_pcm8k("Yes, that works for me, thank you very much", "en")
    first = asyncio.create_task(english.transcribe(pcm, 8000, "en"))
    queued = asyncio.create_task(english.transcribe(pcm, 8000, "en"))
    await asyncio.sleep(0)
    queued.cancel()
    assert _words((await first).text) == _words("Yes, that works for me, thank you very much")
    with pytest.raises(asyncio.CancelledError):
        await queued
