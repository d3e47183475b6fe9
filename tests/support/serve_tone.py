"""The real app in a process of its own, with tone-keyed speech: for tests that kill a server.

    python tests/support/serve_tone.py --port 8123 --data-dir /tmp/vd --instance-id test:8123

Settings come from the ``VOICEDESK_*`` environment like in production (master key, database
URL and schemas, public URL, Twilio auth token), with ``--data-dir`` and ``--instance-id``
given on the command line (a restarted process with the same instance id is the same
instance: it closes the calls it left open). Background jobs are off. Speech is
``tone_engines(PHRASES)``: a caller tone of a listed frequency is heard as its phrase.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``tests.support`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import uvicorn

from tests.support.engines import tone_engines
from voicedesk.config import Settings
from voicedesk.web.app import create_app

PHRASES = {
    500: "Wo finde ich Sie?",
    700: "Wann haben Sie geöffnet?",
    900: "Was kostet eine Sprechstunde?",
    1100: "Ich hätte gern einen Termin für eine Sprechstunde morgen um 10 Uhr",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--instance-id", required=True)
    args = parser.parse_args(argv)
    settings = Settings(_env_file=None, data_dir=args.data_dir, instance_id=args.instance_id, jobs_enabled=False)
    app = create_app(settings, engines=tone_engines(PHRASES))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", ws_ping_interval=None)


if __name__ == "__main__":
    main()
