"""The piper worker process: ``python -m voicedesk.voice.tts.piper_worker --model M --config C``.

piper-tts is GPL-3.0-or-later, so it is imported here, in a child process, and nowhere
else (``PiperTextToSpeech`` starts this program and talks to it over pipes). Nothing in
voicedesk imports this module.

Protocol (one worker serves one parent):
- stdin, UTF-8 JSON lines: ``{"op": "say", "id": N, "text": "..."}``,
  ``{"op": "cancel", "id": N}`` (stop after the clause being synthesised; skip if still
  queued), ``{"op": "quit"}`` (finish what was asked, then exit). End of input also quits.
- stdout, binary frames: 1 byte kind + uint32 id + uint32 length (little endian) + payload.
  ``R`` ready (id 0, JSON ``{"sample_rate": 8000, "source_rate": 22050}``), ``A`` audio
  (int16 little-endian PCM at 8 kHz, one clause), ``E`` end of request ``id`` (done or
  cancelled), ``X`` error for ``id`` (UTF-8 message; followed by ``E``).
Everything else the libraries print goes to stderr (fd 1 is pointed at stderr).

Scheduling: a request's text is cut into clauses (``text.split_clauses``: at commas etc.,
so the first audio of a long sentence comes after its first clause, not after all of it),
and each clause is sent as soon as it is synthesised. Requests that are under way take
turns clause by clause, so a new request waits for at most one clause of another, not
for its whole text. ``--threads`` sets onnxruntime's threads per worker (default 1: the
parent runs one worker per core).
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
from collections import deque
from typing import Any, BinaryIO

import numpy as np

from voicedesk.voice.codecs import resample
from voicedesk.voice.tts.text import split_clauses

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
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (0: all cores)")
    args = parser.parse_args(argv)

    out = _Out(os.fdopen(os.dup(1), "wb"))
    os.dup2(2, 1)  # stray prints from libraries must not corrupt the frame stream
    sys.stdout = sys.stderr

    from piper import PiperVoice  # GPL: only ever imported in this process

    voice = PiperVoice.load(args.model, config_path=args.config)
    if args.threads > 0:  # PiperVoice.load takes no session options: rebuild the session with them
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        voice.session = onnxruntime.InferenceSession(args.model, sess_options=options,
                                                     providers=["CPUExecutionProvider"])
    source_rate = int(voice.config.sample_rate)
    for _ in voice.synthesize(WARM_UP_TEXT):
        pass
    out.send(b"R", 0, json.dumps({"sample_rate": OUTPUT_RATE, "source_rate": source_rate}).encode())

    requests: queue.Queue[dict[str, Any] | None] = queue.Queue()
    cancelled: set[int] = set()
    threading.Thread(target=_reader, args=(requests, cancelled), daemon=True).start()
    active: dict[int, deque[str]] = {}  # request id → clauses left, in turn order
    quitting = False

    def admit(msg: dict[str, Any] | None) -> None:
        nonlocal quitting
        if msg is None:
            quitting = True
            return
        rid = int(msg.get("id", 0))
        text = str(msg.get("text", ""))
        active[rid] = deque(split_clauses(text) or ([text] if text.strip() else []))

    while active or not quitting:
        if not active:
            admit(requests.get())
        while True:  # everything that arrived meanwhile joins the rotation
            try:
                admit(requests.get_nowait())
            except queue.Empty:
                break
        if not active:
            continue
        rid = next(iter(active))
        clauses = active.pop(rid)
        try:
            if clauses and rid not in cancelled:
                for chunk in voice.synthesize(clauses.popleft()):
                    if rid in cancelled:
                        break
                    pcm = np.asarray(chunk.audio_int16_array, dtype=np.int16)
                    out.send(b"A", rid, resample(pcm, source_rate, OUTPUT_RATE).astype("<i2").tobytes())
        except Exception as exc:  # reported to the parent; the worker lives on
            out.send(b"X", rid, f"{type(exc).__name__}: {exc}".encode())
            clauses.clear()
        if clauses and rid not in cancelled:
            active[rid] = clauses  # back of the line: the others get a clause first
        else:
            cancelled.discard(rid)
            out.send(b"E", rid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
