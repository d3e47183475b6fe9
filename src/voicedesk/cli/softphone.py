"""``voicedesk call``: a terminal softphone that acts as Twilio toward a running server.

It signs the incoming-call webhook, follows the TwiML to the media WebSocket and streams
the caller's speech in real time: typed lines are synthesised locally (espeak-ng), WAV
files are sent as recorded. The assistant's audio is saved to a WAV file and, when a local
speech recogniser is installed, transcribed so the conversation prints live.

Input lines: text = caller speech; ``*1`` = press key 1 (``*0``, ``*9``, …); an empty line =
stay silent for a moment; ``/wav FILE`` = send a recording; ``/bye`` = hang up.
"""

from __future__ import annotations

import asyncio
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from voicedesk.cli.app import app
from voicedesk.cli.common import console, fail, run, settings_of, with_vault
from voicedesk.config import Settings
from voicedesk.domain.errors import ConfigError, NotFoundError, VoicedeskError
from voicedesk.store.repos.tenants import profile_of, require_tenant_by_slug
from voicedesk.store.vault import Vault
from voicedesk.telephony.twilio.emulator import EmulatedCall, EmulatorError, TwilioEmulator
from voicedesk.voice.codecs import PCM, resample, ulaw_decode
from voicedesk.voice.ports import SpeechToText, TextToSpeech

QUIET_S = 0.8
REPLY_TIMEOUT_S = 30.0


def _read_wav(path: Path) -> PCM:
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise ConfigError(f"{path}: only 16-bit PCM WAV files are supported")
            frames = wav.readframes(wav.getnframes())
            rate, channels = wav.getframerate(), wav.getnchannels()
    except (OSError, wave.Error) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    pcm = np.frombuffer(frames, dtype="<i2").astype(np.int16)
    if channels > 1:
        pcm = pcm.reshape(-1, channels)[:, 0].copy()
    return resample(pcm, rate, 8000)


def _write_wav(path: Path, ulaw: bytes) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(ulaw_decode(ulaw).astype("<i2").tobytes())


async def _synth(tts: TextToSpeech, text: str, language: str) -> PCM:
    chunks = [c async for c in tts.synthesize(text, language)]
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


async def _wait_reply(call: EmulatedCall, before: int) -> bytes:
    """The assistant audio that arrives after ``before`` bytes, once it has finished playing."""
    try:
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            while len(call.received) <= before and not call.ended.is_set():  # noqa: ASYNC110 - polls the line
                await asyncio.sleep(0.05)
            await call.wait_until_quiet(quiet_s=QUIET_S, timeout_s=REPLY_TIMEOUT_S)
    except TimeoutError:
        pass
    return bytes(call.received[before:])


async def _show_reply(call: EmulatedCall, before: int, stt: SpeechToText | None, language: str) -> None:
    audio = await _wait_reply(call, before)
    if not audio:
        return
    if stt is None:
        console.print(f"[cyan]assistant>[/] ({len(audio) / 8000:.1f} s of audio)")
        return
    try:
        text = (await stt.transcribe(ulaw_decode(audio), 8000, language)).text
    except VoicedeskError as exc:
        text = f"({len(audio) / 8000:.1f} s of audio; transcription failed: {exc.msg})"
    console.print(f"[cyan]assistant>[/] {text}")


async def _lines(script: list[str]) -> AsyncIterator[str]:
    if script:
        for line in script:
            yield line
        yield "/bye"
        return
    while True:
        typed = await asyncio.to_thread(_prompt)
        if typed is None:
            yield "/bye"
            return
        yield typed


def _prompt() -> str | None:
    try:
        return input("caller> ")
    except EOFError:
        return None


def _local_engines(language: str, settings: Settings, transcribe: bool) -> tuple[TextToSpeech, SpeechToText | None]:
    try:
        from voicedesk.voice.tts.espeak import EspeakTextToSpeech
    except ImportError as exc:
        raise ConfigError(f"the local voice is not installed ({exc.name})") from None
    stt: SpeechToText | None = None
    if transcribe:
        try:
            from voicedesk.voice.stt.whisper import LocalWhisperSpeechToText

            stt = (LocalWhisperSpeechToText.english() if language == "en"
                   else LocalWhisperSpeechToText.german(settings.data_dir / "models" / "whisper-base"))
        except (ImportError, VoicedeskError):
            console.print("[yellow]no local speech recogniser: replies are saved, not transcribed[/]")
    return EspeakTextToSpeech(), stt


async def _tenant_number(vault: Vault, slug: str, language: str | None) -> tuple[str, str]:
    async with vault.db.sessions() as session:
        profile = profile_of(await require_tenant_by_slug(session, slug))
    if not profile.twilio_numbers:
        raise NotFoundError(f"tenant {slug!r} has no Twilio number to call")
    if language:
        for number, lang in profile.number_languages.items():
            if lang == language:
                return number, language
    number = profile.twilio_numbers[0]
    return number, profile.language_for_number(number)


async def place_call(
    settings: Settings, *, tenant: str, server_url: str, caller: str, language: str | None, script: list[str],
    save: Path, transcribe: bool,
) -> None:
    number, lang = await with_vault(settings, lambda v: _tenant_number(v, tenant, language), migrate=False)
    token = settings.twilio_token()
    if token is None:
        raise ConfigError("no Twilio auth token: run `voicedesk init` or set VOICEDESK_TWILIO_AUTH_TOKEN")
    tts, stt = _local_engines(lang, settings, transcribe)
    if stt is not None:
        await stt.warm_up()
    async with TwilioEmulator(settings.public_url, token, server_url=server_url) as emulator:
        try:
            call = await emulator.place_call(to=number, from_=caller)
        except (EmulatorError, OSError) as exc:
            raise ConfigError(f"cannot reach voicedesk at {server_url}: {exc}") from None
        console.print(f"[green]connected[/] to {tenant} ({number}, {lang}); call {call.call_sid}")
        await _show_reply(call, 0, stt, lang)
        async for line in _lines(script):
            if call.ended.is_set():
                break
            before = len(call.received)
            stripped = line.strip()
            if stripped == "/bye":
                break
            if stripped.startswith("*") and len(stripped) > 1:
                await call.press(stripped[1:])
            elif stripped.startswith("/wav "):
                await call.say(_read_wav(Path(stripped[5:].strip())))
            elif stripped:
                await call.say(await _synth(tts, stripped, lang))
            await call.say(np.zeros(4000, dtype=np.int16))
            await _show_reply(call, before, stt, lang)
        if not call.ended.is_set():
            await call.hang_up()
        await call.wait_ended(timeout_s=10)
    _write_wav(save, bytes(call.played))
    console.print(f"call ended ({call.end_reason}); assistant audio saved to {save}")


@app.command("call")
def call_command(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option(help="slug of the business to call")],
    url: Annotated[str | None, typer.Option(help="where the server listens (default: VOICEDESK_PUBLIC_URL)")] = None,
    caller: Annotated[str, typer.Option("--from", help="the caller's number (E.164)")] = "+4915112345678",
    lang: Annotated[str | None, typer.Option(help="de or en: call the number of that language")] = None,
    say: Annotated[list[str] | None, typer.Option(help="caller lines to speak in order, then hang up")] = None,
    wav: Annotated[list[Path] | None, typer.Option(help="WAV files to send in order, then hang up")] = None,
    save: Annotated[Path, typer.Option(help="where to save the assistant's audio")] = Path("voicedesk-call.wav"),
    transcribe: Annotated[bool, typer.Option(help="transcribe the replies locally")] = True,
) -> None:
    """Place a test call: type what the caller says; the assistant's replies print and are saved."""
    settings = settings_of(ctx)
    script = list(say or []) + [f"/wav {p}" for p in (wav or [])]
    if not script and not sys.stdin.isatty():
        script = [line.rstrip("\n") for line in sys.stdin]
    if lang not in (None, "de", "en"):
        raise fail("--lang must be de or en")
    run(place_call(settings, tenant=tenant, server_url=url or settings.public_url, caller=caller, language=lang,
                   script=script, save=save, transcribe=transcribe))

