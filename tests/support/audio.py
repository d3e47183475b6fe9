"""Test audio made at test time: synthesised speech, silence, tones, noise (8 kHz int16).

``synth_pcm8k`` runs espeak-ng (Debian package ``espeak-ng``) in a subprocess and sends
the result through the phone path: resample to 8 kHz, μ-law encode, μ-law decode — the
samples a Twilio media stream delivers. Results are cached per (text, language, wpm).
espeak's German is hard for Whisper base (speech.md): prove a German line survives the
round trip before building a test on it.
"""

from __future__ import annotations

import functools
import shutil
import subprocess

import numpy as np
from numpy.typing import NDArray

from voicedesk.voice.codecs import resample, ulaw_decode, ulaw_encode
from voicedesk.voice.tts.espeak import ESPEAK_VOICES, parse_wav

PCM = NDArray[np.int16]
RATE = 8000


def synth_pcm8k(text: str, language: str, *, wpm: int = 160, voice: str | None = None, gap: int = 0) -> PCM:
    """Speak ``text`` with espeak-ng (``en`` → en-us, ``de`` → de) as phone audio at 8 kHz.

    ``voice`` picks an espeak variant (e.g. ``de+m1``), ``gap`` adds pauses between words (10 ms units).
    """
    return _synth(text, language, wpm, voice, gap).copy()


def synth_ulaw8k(text: str, language: str, *, wpm: int = 160) -> bytes:
    """Like ``synth_pcm8k`` but as the μ-law bytes a carrier sends."""
    return ulaw_encode(_synth(text, language, wpm, None, 0))


def silence(ms: int) -> PCM:
    """Digital silence."""
    return np.zeros(ms * RATE // 1000, dtype=np.int16)


def tone(freq_hz: float, ms: int, *, dbfs: float = -10.0) -> PCM:
    """A sine tone at ``dbfs`` (peak level relative to full scale)."""
    t = np.arange(ms * RATE // 1000) / RATE
    amp = 32767 * 10 ** (dbfs / 20)
    return np.rint(amp * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def noise(ms: int, *, dbfs: float = -50.0, seed: int = 0) -> PCM:
    """White noise at ``dbfs`` RMS (line noise when quiet)."""
    rng = np.random.default_rng(seed)
    rms = 32767 * 10 ** (dbfs / 20)
    return np.clip(np.rint(rng.normal(0.0, rms, ms * RATE // 1000)), -32768, 32767).astype(np.int16)


def frames(pcm: PCM, ms: int = 20) -> list[PCM]:
    """Cut ``pcm`` into frames of ``ms`` (the last one may be shorter)."""
    step = ms * RATE // 1000
    return [pcm[i:i + step] for i in range(0, pcm.size, step)]


@functools.lru_cache(maxsize=128)
def _synth(text: str, language: str, wpm: int, voice: str | None, gap: int) -> PCM:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is missing: apt-get install espeak-ng")
    args = [exe, "-v", voice or ESPEAK_VOICES[language], "-s", str(wpm), "--stdout"]
    if gap:
        args += ["-g", str(gap)]
    out = subprocess.run(args, input=text.encode(),
                         capture_output=True, check=True, timeout=30)
    pcm, rate = parse_wav(out.stdout)
    return ulaw_decode(ulaw_encode(resample(pcm, rate, RATE)))
