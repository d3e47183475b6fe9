"""espeak-ng as a subprocess: the German voice and the fallback voice for any language.

espeak-ng is GPL-3.0, so voicedesk only ever runs the Debian binary
(``apt-get install espeak-ng``) as a separate process: one ``espeak-ng -v <voice>
--stdout`` per sentence, text on stdin (never on the command line), WAV on stdout. It
takes 11–15 ms to first audio (speech.md §3). The 22.05 kHz output is resampled to 8 kHz.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import struct
from collections.abc import AsyncIterator, Mapping

import numpy as np
from numpy.typing import NDArray

from voicedesk.domain.errors import ErrorCategory, ProviderError
from voicedesk.voice.codecs import resample
from voicedesk.voice.tts.text import normalize_text, split_sentences

PCM = NDArray[np.int16]
OUTPUT_RATE = 8000
ESPEAK_VOICES: Mapping[str, str] = {"de": "de", "en": "en-us"}

log = logging.getLogger(__name__)


def parse_wav(data: bytes) -> tuple[PCM, int]:
    """16-bit mono PCM WAV bytes → (samples, sample rate).

    Accepts the streaming header espeak-ng writes to a pipe (RIFF and data sizes set to
    about 2 GiB): the data chunk is read up to the end of the bytes actually present.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE stream")
    pos, rate = 12, 0
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if tag == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if fmt != 1 or channels != 1 or bits != 16:
                raise ValueError(f"unsupported WAV format {fmt}/{channels} ch/{bits} bit")
        elif tag == b"data":
            if rate == 0:
                raise ValueError("WAV data before its fmt chunk")
            end = min(body + size, len(data))
            end -= (end - body) % 2
            return np.frombuffer(data[body:end], dtype="<i2").astype(np.int16), rate
        pos = body + size + (size & 1)
    raise ValueError("WAV without a data chunk")


class EspeakTextToSpeech:
    """Local espeak-ng voice; yields one 8 kHz PCM chunk per sentence.

    Args:
        executable: path of ``espeak-ng``; looked up on ``PATH`` when ``None``.
        voices: language → espeak voice name (default ``de`` → ``de``, ``en`` → ``en-us``).
        words_per_minute: speaking rate (espeak's ``-s``; 160 is a calm phone pace).
        timeout_s: limit for one sentence; exceeded → ``ProviderError(TIMEOUT)``.

    Cancelling the consumer (barge-in) or closing the iterator kills the running process.
    """

    name = "espeak-ng"

    def __init__(
        self,
        *,
        executable: str | None = None,
        voices: Mapping[str, str] = ESPEAK_VOICES,
        words_per_minute: int = 160,
        timeout_s: float = 10.0,
    ) -> None:
        self.executable = executable
        self.voices = dict(voices)
        self.words_per_minute = words_per_minute
        self.timeout_s = timeout_s

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self.voices)

    def _exe(self) -> str:
        exe = self.executable or shutil.which("espeak-ng")
        if exe is None:
            raise ProviderError("espeak-ng is not installed: apt-get install espeak-ng",
                                category=ErrorCategory.UNAVAILABLE, provider=self.name)
        return exe

    async def warm_up(self) -> None:
        """Check the binary and every configured voice once (also fills the page cache).

        espeak-ng silently falls back to its default voice for an unknown name, so the
        names are checked against ``espeak-ng --voices``.
        """
        known = await self._known_voices()
        missing = sorted(v for v in self.voices.values() if v.lower() not in known)
        if missing:
            raise ProviderError(f"espeak-ng has no voice {', '.join(missing)}",
                                category=ErrorCategory.UNAVAILABLE, provider=self.name)
        for language in self.voices:
            async for _ in self.synthesize("OK.", language):
                pass

    async def _known_voices(self) -> set[str]:
        try:
            proc = await asyncio.create_subprocess_exec(
                self._exe(), "--voices", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
            out, _ = await asyncio.wait_for(proc.communicate(), self.timeout_s)
        except (OSError, TimeoutError) as exc:
            raise ProviderError(f"cannot list espeak-ng voices: {exc}", category=ErrorCategory.UNAVAILABLE,
                                provider=self.name) from exc
        known: set[str] = set()
        for line in out.decode(errors="replace").splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 5:  # Pty Language Age/Gender VoiceName File ...
                known.update({cols[1].lower(), cols[3].lower(), cols[4].lower(), cols[4].rsplit("/", 1)[-1].lower()})
        return known

    async def synthesize(self, text: str, language: str) -> AsyncIterator[PCM]:
        """Speak ``text`` sentence by sentence; each sentence is one 8 kHz chunk."""
        voice = self.voices.get(language)
        if voice is None:
            raise ProviderError(f"espeak-ng has no voice configured for language {language!r}",
                                category=ErrorCategory.BAD_REQUEST, provider=self.name)
        for sentence in split_sentences(normalize_text(text, language)):
            pcm = await self._run(voice, sentence)
            if pcm.size:
                yield pcm

    async def _run(self, voice: str, sentence: str) -> PCM:
        exe = self._exe()
        try:
            proc = await asyncio.create_subprocess_exec(
                exe, "-v", voice, "-s", str(self.words_per_minute), "--stdout",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise ProviderError(f"cannot start espeak-ng: {exc}", category=ErrorCategory.UNAVAILABLE,
                                provider=self.name) from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(sentence.encode()), self.timeout_s)
        except TimeoutError as exc:
            raise ProviderError(f"espeak-ng took longer than {self.timeout_s} s",
                                category=ErrorCategory.TIMEOUT, provider=self.name) from exc
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            raise ProviderError(
                f"espeak-ng exited with {proc.returncode}: {err.decode(errors='replace').strip()[:200]}",
                category=ErrorCategory.BAD_REQUEST if proc.returncode == 1 else ErrorCategory.SERVER,
                provider=self.name)
        try:
            pcm, rate = parse_wav(out)
        except ValueError as exc:
            raise ProviderError(f"espeak-ng wrote no usable WAV: {exc}", category=ErrorCategory.SERVER,
                                provider=self.name) from exc
        return resample(pcm, rate, OUTPUT_RATE)
