"""Serve voicedesk for the benchmark: real VAD, stand-in STT/dialogue/TTS (or real engines).

    .venv/bin/python bench/serve_standin.py --port 8765 \\
        [--stt-delay-ms 150 --llm-delay-ms 200 --tts-delay-ms 100 --vad-stop-ms 200] \\
        [--engines standin|real] [--language en|de]

The app is built through ``create_app(settings, overrides=...)`` on 127.0.0.1 with a
throwaway data directory (SQLite, a fresh master key), the Twilio auth token the load
generator signs with (``--auth-token``), and one tenant made from a demo profile with
``consent_mode: announce`` (the announcement plays, then the conversation starts, no
consent question) that answers ``--number``. With ``--engines standin`` the engines are
the stand-ins of ``bench/standins.py`` and voicedesk's real VAD with end of speech after
``--vad-stop-ms`` of silence; with ``--engines real`` the configured offline engines run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import secrets
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import uvicorn

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT / "src"))

from standins import StandInDialogueEngine, StandInSpeechToText, StandInTextToSpeech  # noqa: E402

from voicedesk.config import Settings  # noqa: E402
from voicedesk.engines import Engines  # noqa: E402
from voicedesk.tenancy.service import do_create_tenant, load_profile_file  # noqa: E402
from voicedesk.voice.vad import SileroVad  # noqa: E402
from voicedesk.web.app import create_app, server_options  # noqa: E402

PROFILES = {"en": ROOT / "examples" / "harbor-auto.yaml", "de": ROOT / "examples" / "praxis-mueller.yaml"}


def bench_settings(args: argparse.Namespace, data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        master_key=base64.b64encode(secrets.token_bytes(32)).decode(),
        public_url=f"http://127.0.0.1:{args.port}",
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token=args.auth_token,
        twilio_api_base="http://127.0.0.1:9",  # nothing listens: no call ever leaves this box
        jobs_enabled=False,
        log_level="WARNING",
        **({} if args.vad_stop_ms is None else {"endpoint_hangover_ms": args.vad_stop_ms}),
    )


async def create_bench_tenant(settings: Settings, args: argparse.Namespace) -> None:
    """The tenant the load generator calls: a demo profile, announce mode, our number."""
    from voicedesk.bootstrap import open_vault

    profile = load_profile_file(PROFILES[args.language])
    profile = profile.model_copy(
        update={
            "slug": "bench",
            "twilio_numbers": [args.number],
            "number_languages": {},
            "consent_mode": "announce",
        }
    )
    vault = await open_vault(settings)
    try:
        await do_create_tenant(vault, profile, actor="bench")
    finally:
        await vault.close()


def standin_engines(args: argparse.Namespace) -> Engines:
    """Stand-in STT, dialogue and TTS for every language; voicedesk's real Silero VAD."""
    stt = StandInSpeechToText(args.stt_delay_ms / 1000)
    tts = StandInTextToSpeech(args.tts_delay_ms / 1000)
    return Engines(
        stt={"de": stt, "en": stt},
        tts={"de": tts, "en": tts},
        vad_factory=SileroVad,
        dialogue=StandInDialogueEngine(args.llm_delay_ms / 1000),
        hangover_ms=args.vad_stop_ms,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--stt-delay-ms", type=int, default=150)
    p.add_argument("--llm-delay-ms", type=int, default=200)
    p.add_argument("--tts-delay-ms", type=int, default=100)
    p.add_argument(
        "--vad-stop-ms", type=int, default=None, help="end of speech after this much silence (stand-ins: 200)"
    )
    p.add_argument("--engines", choices=["standin", "real"], default="standin")
    p.add_argument("--language", choices=sorted(PROFILES), default="en")
    p.add_argument("--number", default="+493012345678", help="the tenant's Twilio number")
    p.add_argument("--auth-token", default="bench-auth-token")
    p.add_argument("--keep-data", action="store_true", help="keep the throwaway data dir")
    args = p.parse_args()
    if args.vad_stop_ms is None and args.engines == "standin":
        args.vad_stop_ms = 200
    data_dir = Path(tempfile.mkdtemp(prefix="voicedesk-bench-"))
    # uvicorn re-raises SIGTERM after its graceful shutdown; make that an exit that still
    # runs the clean-up below instead of killing the process outright.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        settings = bench_settings(args, data_dir)
        asyncio.run(create_bench_tenant(settings, args))
        app = create_app(settings, engines=standin_engines(args) if args.engines == "standin" else None)
        uvicorn.run(app, host="127.0.0.1", port=args.port, **server_options(settings))
    finally:
        if not args.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
