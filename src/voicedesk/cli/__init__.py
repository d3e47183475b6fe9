"""The ``voicedesk`` command line (Typer). Each command: parse → one service call → render.

Errors from the ``VoicedeskError`` tree print one clear line and exit non-zero, without a
traceback. Every administrative command is written to the audit log (R-10.2).
"""

from __future__ import annotations

from voicedesk.cli.app import app, main

__all__ = ["app", "main"]
