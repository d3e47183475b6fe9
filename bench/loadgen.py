"""Load generator: N concurrent emulated Twilio calls against a voicedesk or Pipecat server.

Each call does what Twilio does: a signed incoming-call webhook (``X-Twilio-Signature``),
TwiML parsed for ``<Connect><Stream url>`` and its ``<Parameter>``s, the media WebSocket
(signed upgrade) with ``connected``, ``start``, then one 160-byte μ-law ``media`` frame
every 20 ms in real time — silence, or a caller utterance synthesised once up front with
espeak-ng — mark echoes when the audio queued before a mark has played on a simulated
8 bytes/ms playout clock, ``clear`` honoured (buffer flushed, pending marks echoed), then
``stop`` and a signed status callback.

A call waits for the opening prompt to finish playing, then speaks ``--turns`` utterances,
each after the previous reply has played out; a turn unanswered after ``--turn-timeout``
fails the call, which then hangs up. Per turn it measures voice-to-voice latency:
the send time of the caller's last voiced frame → the arrival of the first non-silent
assistant ``media``. Also measured: failed calls, server CPU seconds per call-minute
(``/proc/<pid>/stat`` of the server and all its descendants, reaped children included),
peak RSS of that process tree, and the generator's own lag (actual − scheduled send time
of every frame); a run whose lag p99 exceeds ``--lag-flag-ms`` is flagged, because its
latencies then include the generator's own delay.

    .venv/bin/python bench/loadgen.py --url http://127.0.0.1:8765 --target voicedesk \\
        --calls 10 --ramp 2 --turns 3 --language en --server-pid 1234 --out bench/out/x.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
import wave
import xml.etree.ElementTree as ET
from array import array
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))

from voicedesk.voice.codecs import resample, ulaw_decode, ulaw_encode  # noqa: E402

try:  # the project's own signer (telephony/twilio/signature.py), else the official SDK's
    from voicedesk.telephony.twilio.signature import sign as _sign
except ImportError:  # pragma: no cover - only while signature.py has not landed
    from twilio.request_validator import RequestValidator

    def _sign(url: str, params: Any, token: str) -> str:
        return str(RequestValidator(token).compute_signature(url, params or {}))


FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
FRAME_S = 0.020
SILENCE = b"\xff" * FRAME_BYTES
SILENCE_B64 = base64.b64encode(SILENCE).decode()
VOICED_DBFS = -40.0  # a frame louder than this counts as voiced speech
ASSISTANT_AUDIBLE = 64  # |sample| above this in an assistant frame: not silence

UTTERANCES: dict[str, tuple[str, ...]] = {
    "en": (
        "I would like to book an appointment on Tuesday afternoon.",
        "My name is Anna Schmidt.",
        "Yes, that works for me, thank you very much.",
        "Could you please call me back this afternoon?",
    ),
    "de": (
        "Ich möchte gerne einen Termin am Dienstagnachmittag vereinbaren.",
        "Mein Name ist Anna Schmidt.",
        "Ja, das passt mir, vielen Dank.",
        "Können Sie mich bitte heute Nachmittag zurückrufen?",
    ),
}
ESPEAK_VOICE = {"en": "en-us", "de": "de"}


# --- caller audio ---------------------------------------------------------------------
@dataclass(frozen=True)
class Utterance:
    """One caller utterance as base64 μ-law frames; ``last_voiced`` indexes ``frames``."""

    text: str
    frames: tuple[str, ...]
    last_voiced: int

    @property
    def seconds(self) -> float:
        return len(self.frames) * FRAME_S


def synthesize(text: str, language: str, cache: Path) -> Utterance:
    """espeak-ng → 8 kHz μ-law frames (cached as .wav under ``cache``)."""
    cache.mkdir(parents=True, exist_ok=True)
    wav_path = cache / f"{language}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.wav"
    if not wav_path.exists():
        espeak = shutil.which("espeak-ng")
        if espeak is None:
            raise RuntimeError("espeak-ng is missing: apt-get install espeak-ng")
        tmp = wav_path.with_suffix(".tmp.wav")
        subprocess.run([espeak, "-v", ESPEAK_VOICE[language], "-s", "160", "-w", str(tmp), text], check=True)
        tmp.replace(wav_path)
    with wave.open(str(wav_path)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        rate = w.getframerate()
    pcm8 = resample(pcm, rate, 8000)
    n = math.ceil(pcm8.size / FRAME_BYTES)
    padded = np.zeros(n * FRAME_BYTES, dtype=np.int16)
    padded[: pcm8.size] = pcm8
    blocks = padded.reshape(n, FRAME_BYTES).astype(np.float64)
    dbfs = 20 * np.log10(np.sqrt(np.mean(blocks**2, axis=1)) / 32768 + 1e-12)
    voiced = np.flatnonzero(dbfs > VOICED_DBFS)
    if voiced.size == 0:
        raise RuntimeError(f"espeak produced no voiced audio for {text!r}")
    last = int(voiced[-1])
    mulaw = ulaw_encode(padded[: (last + 1) * FRAME_BYTES])  # trailing silence is the line's job
    frames = tuple(
        base64.b64encode(mulaw[i : i + FRAME_BYTES]).decode() for i in range(0, len(mulaw), FRAME_BYTES)
    )
    return Utterance(text=text, frames=frames, last_voiced=last)


def load_utterances(language: str, cache: Path) -> list[Utterance]:
    return [synthesize(t, language, cache) for t in UTTERANCES[language]]


# --- one call -------------------------------------------------------------------------
@dataclass
class CallResult:
    index: int
    ok: bool = False
    error: str | None = None
    latencies: list[float] = field(default_factory=list)  # seconds, one per answered turn
    missed_turns: int = 0
    seconds: float = 0.0  # media stream duration
    media_in: int = 0
    marks_echoed: int = 0
    clears: int = 0


@dataclass(frozen=True)
class CallPlan:
    base_url: str
    auth_token: str
    to_number: str
    turns: int
    quiet_s: float  # silence after a reply has played before the caller speaks again
    greeting_timeout_s: float
    turn_timeout_s: float


def _media_json(stream_sid: str, seq: int, chunk: int, payload: str) -> str:
    return (
        f'{{"event":"media","sequenceNumber":"{seq}","streamSid":"{stream_sid}",'
        f'"media":{{"track":"inbound","chunk":"{chunk}","timestamp":"{(chunk - 1) * 20}",'
        f'"payload":"{payload}"}}}}'
    )


def parse_twiml(xml: str) -> tuple[str, dict[str, str]]:
    """``<Connect><Stream url>`` and its ``<Parameter>``s, as Twilio reads them."""
    root = ET.fromstring(xml)  # noqa: S314 - our own server's answer on 127.0.0.1
    stream = root.find("./Connect/Stream")
    if stream is None or not stream.get("url"):
        raise ValueError(f"no <Connect><Stream url> in TwiML: {xml[:200]}")
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return str(stream.get("url")), params


def _audible(mulaw: bytes) -> bool:
    return int(np.abs(ulaw_decode(mulaw).astype(np.int32)).max(initial=0)) > ASSISTANT_AUDIBLE


class _Line:
    """The carrier side of one media stream: playout clock, marks, what arrived when."""

    def __init__(self) -> None:
        self.playout_end = 0.0
        self.last_media = 0.0
        self.any_media = False
        self.pending_marks: list[tuple[float, str]] = []  # (echo time, name)
        self.awaiting_since: float | None = None  # last voiced frame sent, reply not yet heard
        self.first_reply: float | None = None
        self.media_in = 0
        self.clears = 0
        self.closed = False

    def on_message(self, raw: str | bytes, now: float) -> None:
        msg = json.loads(raw)
        event = msg.get("event")
        if event == "media":
            audio = base64.b64decode(msg["media"]["payload"])
            self.media_in += 1
            self.any_media = True
            self.last_media = now
            self.playout_end = max(self.playout_end, now) + len(audio) / 8000
            if self.awaiting_since is not None and self.first_reply is None and _audible(audio):
                self.first_reply = now
        elif event == "mark":
            self.pending_marks.append((max(self.playout_end, now), msg["mark"]["name"]))
        elif event == "clear":
            self.clears += 1
            self.playout_end = now
            self.pending_marks = [(now, name) for _, name in self.pending_marks]

    def played_out(self, now: float, quiet_s: float) -> bool:
        return now >= self.playout_end + quiet_s and now - self.last_media >= quiet_s


async def run_call(
    index: int,
    plan: CallPlan,
    utterances: Sequence[Utterance],
    start_at: float,
    client: httpx.AsyncClient,
    lags: array[float],
) -> CallResult:
    """One emulated call starting at ``start_at`` (``time.perf_counter`` clock)."""
    result = CallResult(index=index)
    await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
    call_sid = f"CA{index:032x}"
    account_sid = "AC" + "0" * 32
    caller = f"+4915100{index:06d}"
    voice_url = plan.base_url.rstrip("/") + "/twilio/voice"
    form = {
        "AccountSid": account_sid,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Called": plan.to_number,
        "Caller": caller,
        "Direction": "inbound",
        "From": caller,
        "To": plan.to_number,
    }
    line = _Line()
    stream_t0 = time.perf_counter()
    try:
        response = await client.post(
            voice_url, data=form, headers={"X-Twilio-Signature": _sign(voice_url, form, plan.auth_token)}
        )
        response.raise_for_status()
        ws_url, params = parse_twiml(response.text)
        headers = {"x-twilio-signature": _sign(ws_url, None, plan.auth_token)}
        async with websockets.connect(
            ws_url, additional_headers=headers, max_size=2**22, open_timeout=20, ping_interval=None
        ) as ws:
            stream_sid = f"MZ{index:032x}"
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            start = {
                "accountSid": account_sid,
                "streamSid": stream_sid,
                "callSid": call_sid,
                "tracks": ["inbound"],
                "customParameters": params,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            }
            await ws.send(
                json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid, "start": start})
            )

            async def receive() -> None:
                try:
                    async for raw in ws:
                        line.on_message(raw, time.perf_counter())
                except websockets.ConnectionClosed:
                    pass
                finally:
                    line.closed = True

            receiver = asyncio.create_task(receive())
            try:
                await _speak(ws, line, plan, utterances, stream_sid, result, lags)
            finally:
                receiver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await receiver
        result.seconds = time.perf_counter() - stream_t0
        status_url = plan.base_url.rstrip("/") + "/twilio/status"
        status = {
            "AccountSid": account_sid,
            "CallSid": call_sid,
            "CallStatus": "completed",
            "CallDuration": str(max(1, round(result.seconds))),
            "From": caller,
            "To": plan.to_number,
        }
        await client.post(
            status_url,
            data=status,
            headers={"X-Twilio-Signature": _sign(status_url, status, plan.auth_token)},
        )
        result.ok = result.error is None and result.missed_turns == 0
    except Exception as exc:  # a failed call is a figure, not a crash of the generator
        result.error = f"{type(exc).__name__}: {exc}"[:300]
        result.seconds = result.seconds or time.perf_counter() - stream_t0
    result.media_in = line.media_in
    result.clears = line.clears
    return result


async def _speak(
    ws: Any,
    line: _Line,
    plan: CallPlan,
    utterances: Sequence[Utterance],
    stream_sid: str,
    result: CallResult,
    lags: array[float],
) -> None:
    """Send one frame every 20 ms on an absolute schedule; drive the caller's turns."""
    seq = 1
    chunk = 0
    t0 = time.perf_counter()
    phase = "greeting"
    turn = 0
    pos = 0
    end_frames = 0
    phase_since = t0
    while True:
        scheduled = t0 + chunk * FRAME_S
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.perf_counter()
        lags.append(now - scheduled)
        if line.closed:
            if phase != "done":
                result.error = result.error or f"server closed the stream during {phase}"
            return
        if line.pending_marks:
            due = [m for m in line.pending_marks if m[0] <= now]
            if due:
                line.pending_marks = [m for m in line.pending_marks if m[0] > now]
                for _, name in due:
                    seq += 1
                    await ws.send(
                        json.dumps(
                            {
                                "event": "mark",
                                "sequenceNumber": str(seq),
                                "streamSid": stream_sid,
                                "mark": {"name": name},
                            }
                        )
                    )
                    result.marks_echoed += 1
        payload = SILENCE_B64
        if phase == "greeting":
            if (line.any_media and line.played_out(now, plan.quiet_s)) or (
                not line.any_media and now - phase_since > plan.greeting_timeout_s
            ):
                phase, pos = "speak", 0
        elif phase == "wait":
            if line.first_reply is not None:
                if line.played_out(now, plan.quiet_s):
                    assert line.awaiting_since is not None
                    result.latencies.append(line.first_reply - line.awaiting_since)
                    line.awaiting_since = line.first_reply = None
                    turn += 1
                    phase, pos = ("speak", 0) if turn < plan.turns else ("end", 0)
            elif line.awaiting_since is not None and now - line.awaiting_since > plan.turn_timeout_s:
                # A caller who gets no answer hangs up; a late answer would otherwise be taken
                # for the reply to the next turn.
                result.missed_turns += 1
                line.awaiting_since = None
                phase, pos = "end", 0
        if phase == "speak":
            utterance = utterances[turn % len(utterances)]
            payload = utterance.frames[pos]
        chunk += 1
        seq += 1
        await ws.send(_media_json(stream_sid, seq, chunk, payload))
        if phase == "speak":
            if pos == utterance.last_voiced:
                line.awaiting_since = time.perf_counter()
                line.first_reply = None
            pos += 1
            if pos == len(utterance.frames):
                phase, phase_since = "wait", now
        elif phase == "end":
            end_frames += 1
            if end_frames >= 10:
                seq += 1
                stop = {"accountSid": "AC" + "0" * 32, "callSid": "CA"}
                await ws.send(
                    json.dumps(
                        {"event": "stop", "sequenceNumber": str(seq), "streamSid": stream_sid, "stop": stop}
                    )
                )
                phase = "done"
                await ws.close()
                return


# --- the server process ---------------------------------------------------------------
_CLK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> tuple[int, float, float, int] | None:
    """(ppid, own CPU s, reaped children's CPU s, RSS bytes) from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    own = (int(fields[11]) + int(fields[12])) / _CLK
    reaped = (int(fields[13]) + int(fields[14])) / _CLK
    return ppid, own, reaped, int(fields[21]) * _PAGE


def process_tree(root: int) -> tuple[float, int]:
    """CPU seconds (own + reaped children, over the live tree) and RSS bytes of ``root`` and
    all its descendants."""
    stats: dict[int, tuple[int, float, float, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (s := _stat(int(entry))) is not None:
            stats[int(entry)] = s
    children: dict[int, list[int]] = {}
    for pid, s in stats.items():
        children.setdefault(s[0], []).append(pid)
    cpu, rss, todo = 0.0, 0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            cpu += stats[pid][1] + stats[pid][2]
            rss += stats[pid][3]
            todo.extend(children.get(pid, []))
    return cpu, rss


def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (``/proc/stat``: all but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / _CLK


class ServerMonitor:
    """Samples the server's process tree: CPU at start/end, peak RSS in between.

    Also notes what the whole machine and this generator (with its worker processes) used,
    so that CPU taken by other processes on a shared box shows up beside the figures.
    """

    def __init__(self, pid: int | None, period_s: float = 0.25) -> None:
        self.pid = pid
        self.period_s = period_s
        self.cpu_start = self.cpu_end = 0.0
        self.peak_rss = 0
        self.machine_start = self.machine_end = 0.0
        self.self_start = self.self_end = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def other_cpu_s(self) -> float:
        """Busy CPU seconds of everything but the server and the generator."""
        server = self.cpu_end - self.cpu_start if self.pid is not None else 0.0
        return (self.machine_end - self.machine_start) - server - (self.self_end - self.self_start)

    async def __aenter__(self) -> ServerMonitor:
        self.machine_start = machine_busy_s()
        self.self_start = process_tree(os.getpid())[0]
        if self.pid is not None:
            self.cpu_start, self.peak_rss = process_tree(self.pid)
            self._task = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        assert self.pid is not None
        while True:
            await asyncio.sleep(self.period_s)
            _, rss = await asyncio.to_thread(process_tree, self.pid)
            self.peak_rss = max(self.peak_rss, rss)

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.pid is not None:
            self.cpu_end, rss = process_tree(self.pid)
            self.peak_rss = max(self.peak_rss, rss)
        self.self_end = process_tree(os.getpid())[0]
        self.machine_end = machine_busy_s()


# --- orchestration --------------------------------------------------------------------
def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _worker(
    indices: list[int], offsets: list[float], wall_start: float, plan: CallPlan, language: str, cache: str
) -> tuple[list[dict[str, Any]], list[float]]:
    """Run some calls in this process; ``offsets`` are seconds after ``wall_start`` (time.time)."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_run_calls(indices, offsets, wall_start, plan, language, Path(cache)))


async def _run_calls(
    indices: list[int], offsets: list[float], wall_start: float, plan: CallPlan, language: str, cache: Path
) -> tuple[list[dict[str, Any]], list[float]]:
    utterances = load_utterances(language, cache)
    lags: array[float] = array("d")
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        base = time.perf_counter() + (wall_start - time.time())
        results = await asyncio.gather(
            *(
                run_call(i, plan, utterances, base + off, client, lags)
                for i, off in zip(indices, offsets, strict=True)
            )
        )
    return [asdict(r) for r in results], list(lags)


def _pct(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if len(values) else None


def summarize(
    calls: list[dict[str, Any]],
    lags: Sequence[float],
    monitor: ServerMonitor,
    args: argparse.Namespace,
    wall_s: float,
) -> dict[str, Any]:
    latencies = [x for c in calls for x in c["latencies"]]
    call_minutes = sum(c["seconds"] for c in calls) / 60
    cpu = monitor.cpu_end - monitor.cpu_start if monitor.pid is not None else None
    lag_p99 = _pct(lags, 99)
    failures: dict[str, int] = {}
    for c in calls:
        if not c["ok"]:
            key = c["error"] or f"{c['missed_turns']} turn(s) unanswered"
            failures[key.split(":")[0]] = failures.get(key.split(":")[0], 0) + 1
    return {
        "target": args.target,
        "url": args.url,
        "calls": args.calls,
        "turns": args.turns,
        "language": args.language,
        "ramp_s": args.ramp,
        "wall_s": round(wall_s, 2),
        "failed_calls": sum(1 for c in calls if not c["ok"]),
        "failures": failures,
        "turns_measured": len(latencies),
        "v2v_p50_ms": None if not latencies else round(1000 * _pct(latencies, 50), 1),  # type: ignore[operator]
        "v2v_p95_ms": None if not latencies else round(1000 * _pct(latencies, 95), 1),  # type: ignore[operator]
        "v2v_p99_ms": None if not latencies else round(1000 * _pct(latencies, 99), 1),  # type: ignore[operator]
        "v2v_min_ms": None if not latencies else round(1000 * min(latencies), 1),
        "call_minutes": round(call_minutes, 3),
        "server_cpu_s": None if cpu is None else round(cpu, 2),
        "cpu_s_per_call_minute": None if cpu is None or not call_minutes else round(cpu / call_minutes, 3),
        "server_peak_rss_mb": None if monitor.pid is None else round(monitor.peak_rss / 2**20, 1),
        "generator_cpu_s": round(monitor.self_end - monitor.self_start, 2),
        "other_cpu_s": round(monitor.other_cpu_s, 2),
        "lag_p50_ms": None if lag_p99 is None else round(1000 * _pct(lags, 50), 2),  # type: ignore[operator]
        "lag_p99_ms": None if lag_p99 is None else round(1000 * lag_p99, 2),
        "lag_max_ms": None if not lags else round(1000 * max(lags), 2),
        "lagging": lag_p99 is not None and lag_p99 * 1000 > args.lag_flag_ms,
        "latencies_ms": [round(1000 * x, 1) for x in latencies],
        "per_call": [{k: v for k, v in c.items() if k != "latencies"} for c in calls],
    }


MD_HEADER = (
    "| target | calls | failed | turns | v2v p50 ms | p95 ms | p99 ms | CPU s / call-min | peak RSS MB "
    "| gen lag p99 ms |\n|---|---|---|---|---|---|---|---|---|---|"
)


def markdown_row(s: dict[str, Any]) -> str:
    flag = " ⚠" if s["lagging"] else ""
    return (
        f"| {s['target']} | {s['calls']} | {s['failed_calls']} | {s['turns_measured']} | {s['v2v_p50_ms']} "
        f"| {s['v2v_p95_ms']} | {s['v2v_p99_ms']} | {s['cpu_s_per_call_minute']} | {s['server_peak_rss_mb']} "
        f"| {s['lag_p99_ms']}{flag} |"
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = CallPlan(
        base_url=args.url,
        auth_token=args.auth_token,
        to_number=args.to,
        turns=args.turns,
        quiet_s=args.quiet_ms / 1000,
        greeting_timeout_s=args.greeting_timeout,
        turn_timeout_s=args.turn_timeout,
    )
    cache = Path(args.cache)
    await asyncio.to_thread(load_utterances, args.language, cache)  # synthesise once, up front
    offsets = [args.ramp * i / max(1, args.calls - 1) if args.calls > 1 else 0.0 for i in range(args.calls)]
    procs = max(1, min(args.procs, args.calls))
    wall_start = time.time() + 1.0 + 0.5 * procs
    t0 = time.perf_counter()
    calls: list[dict[str, Any]] = []
    lags: list[float] = []
    async with ServerMonitor(args.server_pid) as monitor:
        if procs == 1:
            base = time.perf_counter() + (wall_start - time.time())
            utterances = load_utterances(args.language, cache)
            lag_arr: array[float] = array("d")
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
            async with httpx.AsyncClient(timeout=30, limits=limits) as client:
                results = await asyncio.gather(
                    *(
                        run_call(i, plan, utterances, base + offsets[i], client, lag_arr)
                        for i in range(args.calls)
                    )
                )
            calls, lags = [asdict(r) for r in results], list(lag_arr)
        else:
            loop = asyncio.get_running_loop()
            with ProcessPoolExecutor(procs) as pool:
                futures = [
                    loop.run_in_executor(
                        pool,
                        _worker,
                        list(range(p, args.calls, procs)),
                        offsets[p::procs],
                        wall_start,
                        plan,
                        args.language,
                        str(cache),
                    )
                    for p in range(procs)
                ]
                for part_calls, part_lags in await asyncio.gather(*futures):
                    calls.extend(part_calls)
                    lags.extend(part_lags)
    return summarize(sorted(calls, key=lambda c: c["index"]), lags, monitor, args, time.perf_counter() - t0)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8765", help="server base URL (127.0.0.1 only)")
    p.add_argument("--target", choices=["voicedesk", "pipecat"], default="voicedesk")
    p.add_argument("--calls", type=int, default=1)
    p.add_argument("--ramp", type=float, default=0.0, help="seconds over which call starts are spread")
    p.add_argument("--turns", type=int, default=3)
    p.add_argument("--language", choices=sorted(UTTERANCES), default="en")
    p.add_argument("--auth-token", default="bench-auth-token", help="Twilio auth token the server checks")
    p.add_argument("--to", default="+493012345678", help="the called number (routes to the tenant)")
    p.add_argument("--server-pid", type=int, default=None, help="server process for CPU and RSS figures")
    p.add_argument("--procs", type=int, default=1, help="generator processes (spread the sending load)")
    p.add_argument("--quiet-ms", type=int, default=500, help="silence after a reply before the next turn")
    p.add_argument("--greeting-timeout", type=float, default=6.0)
    p.add_argument("--turn-timeout", type=float, default=10.0)
    p.add_argument("--lag-flag-ms", type=float, default=5.0)
    p.add_argument(
        "--nice", type=int, default=-5, help="scheduling priority of the generator (it plays the carrier)"
    )
    p.add_argument("--cache", default=str(BENCH / "out" / "audio"))
    p.add_argument("--out", default=None, help="write the JSON summary here")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if not args.url.startswith(("http://127.0.0.1", "http://localhost")):
        raise SystemExit("benchmarks target 127.0.0.1 only")
    if args.nice:
        with contextlib.suppress(OSError):  # needs root for a negative value; best effort
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        summary = runner.run(run(args))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary, indent=1))
    brief = {k: v for k, v in summary.items() if k not in ("latencies_ms", "per_call")}
    print(json.dumps(brief, indent=1))
    print(MD_HEADER)
    print(markdown_row(summary))


if __name__ == "__main__":
    main()
