"""The piper worker process: ``python -m voicedesk.voice.tts.piper_worker --model M --config C``.

piper-tts is GPL-3.0-or-later, so it is imported here, in a child process, and nowhere
else (``PiperTextToSpeech`` starts this program and talks to it over pipes). Nothing in
voicedesk imports this module.

Protocol (one worker serves one parent):
- stdin, UTF-8 JSON lines: ``{"op": "say", "id": N, "text": "..."}``,
  ``{"op": "cancel", "id": N}`` (stop after the sentence being synthesised; skip if still
  queued), ``{"op": "quit"}``. End of input also quits.
- stdout, binary frames: 1 byte kind + uint32 id + uint32 length (little endian) + payload.
  ``R`` ready (id 0, JSON ``{"sample_rate": 8000, "source_rate": 22050}``), ``A`` audio
  (int16 little-endian PCM at 8 kHz, one sentence), ``E`` end of request ``id`` (done or
  cancelled), ``X`` error for ``id`` (UTF-8 message; followed by ``E``).
Everything else the libraries print goes to stderr (fd 1 is pointed at stderr).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # after the environment: OpenBLAS reads it when numpy is imported
import json
import queue
import struct
import sys
import threading
from typing import Any, BinaryIO

import numpy as np

from voicedesk.voice.codecs import resample

HEADER = struct.Struct("<cII")
OUTPUT_RATE = 8000
WARM_UP_TEXT = "Hello."


class _Out:
    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def send(self, kind: bytes, rid: int, payload: bytes = b"") -> None:
        self.stream.write(HEADER.pack(kind, rid, len(payload)) + payload)
        self.stream.flush()


def _reader(requests: queue.Queue[dict[str, Any] | None], cancelled: set[int]) -> None:
    for line in sys.stdin.buffer:
        try:
            msg = json.loads(line)
        except ValueError:
            sys.stderr.write(f"piper_worker: bad request line {line[:80]!r}\n")
            continue
        if msg.get("op") == "cancel":
            cancelled.add(int(msg["id"]))
        elif msg.get("op") == "quit":
            break
        else:
            requests.put(msg)
    requests.put(None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", required=True)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)

    out = _Out(os.fdopen(os.dup(1), "wb"))
    os.dup2(2, 1)  # stray prints from libraries must not corrupt the frame stream
    sys.stdout = sys.stderr

    from piper import PiperVoice  # GPL: only ever imported in this process

    voice = PiperVoice.load(args.model, config_path=args.config)
    source_rate = int(voice.config.sample_rate)
    for _ in voice.synthesize(WARM_UP_TEXT):
        pass
    out.send(b"R", 0, json.dumps({"sample_rate": OUTPUT_RATE, "source_rate": source_rate}).encode())

    requests: queue.Queue[dict[str, Any] | None] = queue.Queue()
    cancelled: set[int] = set()
    threading.Thread(target=_reader, args=(requests, cancelled), daemon=True).start()
    while (msg := requests.get()) is not None:
        rid = int(msg.get("id", 0))
        try:
            if rid not in cancelled:
                for chunk in voice.synthesize(str(msg.get("text", ""))):
                    if rid in cancelled:
                        break
                    pcm = np.asarray(chunk.audio_int16_array, dtype=np.int16)
                    out.send(b"A", rid, resample(pcm, source_rate, OUTPUT_RATE).astype("<i2").tobytes())
        except Exception as exc:  # reported to the parent; the worker lives on
            out.send(b"X", rid, f"{type(exc).__name__}: {exc}".encode())
        cancelled.discard(rid)
        out.send(b"E", rid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
