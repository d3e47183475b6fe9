"""The event-loop floor of a WebSocket message: what a bare uvicorn ASGI loop costs per message.

    .venv/bin/python bench/ws_floor.py [--messages 5000] [--gap-ms 2]

Starts uvicorn (the options voicedesk serves with: uvloop, websockets-sansio, no
permessage-deflate) with an ASGI app that only receives, sends it Twilio-sized ``media``
messages one at a time ``--gap-ms`` apart (10 calls' worth of 20 ms frames at 2 ms) and then
back to back, and prints the server's CPU microseconds per message for both. The difference is
the wake-up per message (epoll, read, protocol parse, queue hand-off, task resume), which any
Python server pays once per 20 ms frame and call (bench/FINDINGS.md, finding 3).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import time

import uvicorn
import websockets

MEDIA = json.dumps({"event": "media", "sequenceNumber": "5", "streamSid": "MZ1",
                    "media": {"track": "inbound", "chunk": "4", "timestamp": "80",
                              "payload": base64.b64encode(b"\xff" * 160).decode()}})


async def app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def,type-arg]
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(port: int, pid: int, n: int, gap_s: float) -> float:
    async with websockets.connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
        await asyncio.sleep(0.3)
        before, t0 = cpu_s(pid), time.perf_counter()
        for i in range(n):
            await ws.send(MEDIA)
            if gap_s:
                delay = t0 + (i + 1) * gap_s - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
        await asyncio.sleep(0.5)
        return (cpu_s(pid) - before) / n * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=5000)
    p.add_argument("--gap-ms", type=float, default=2.0)
    p.add_argument("--port", type=int, default=8799)
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", ws_per_message_deflate=False)
        return
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--port", str(args.port)])
    try:
        time.sleep(2.0)
        paced = asyncio.run(measure(args.port, server.pid, args.messages, args.gap_ms / 1000))
        flood = asyncio.run(measure(args.port, server.pid, args.messages, 0.0))
        print(f"server CPU per message: {paced:.1f} µs one at a time ({args.gap_ms} ms apart), "
              f"{flood:.1f} µs back to back")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
