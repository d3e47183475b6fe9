"""Load generator: N concurrent emulated Twilio calls against a voicedesk or Pipecat server.

Each call is a ``voicedesk.telephony.twilio.emulator.TwilioEmulator`` call, i.e. what Twilio
does: a signed incoming-call webhook, TwiML parsed for ``<Connect><Stream url>`` and its
``<Parameter>``s, the signed media WebSocket with ``connected``, ``start``, one 160-byte
μ-law ``media`` frame every 20 ms on an absolute schedule (silence unless the caller
speaks), marks echoed when the audio queued before them has played on a simulated 8 bytes/ms
playout clock, ``clear`` honoured, then ``stop`` and a signed status callback. This module
adds the load around it: caller utterances synthesised once up front with espeak-ng, a ramp
of call starts, the turn script, optional extra generator processes, and the measurements.

A call waits for the opening prompt to finish playing, then speaks ``--turns`` utterances,
each after the previous reply has played out; a turn unanswered after ``--turn-timeout``
fails the call, which then hangs up. Measured: per-turn voice-to-voice latency (the
emulator's: send time of the caller's last voiced frame → arrival of the first audible
assistant ``media``) p50/p95/p99, failed calls, server CPU seconds per call-minute
(``/proc/<pid>/stat`` of the server and all its descendants, reaped children included),
peak RSS of that process tree, CPU used by other processes meanwhile, and the generator's
own lag (event-loop lag on the 20 ms schedule); a run whose lag p99 exceeds
``--lag-flag-ms`` is flagged, because its latencies then include the generator's delay.

    .venv/bin/python bench/loadgen.py --url http://127.0.0.1:8765 --target voicedesk \\
        --calls 10 --ramp 2 --turns 3 --language en --server-pid 1234 --out bench/out/x.json
"""

from __future__ import annotations

import argparse
import asyncio
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
from array import array
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from numpy.typing import NDArray

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))

from voicedesk.telephony.twilio.emulator import EmulatedCall, TwilioEmulator  # noqa: E402
from voicedesk.voice.codecs import resample  # noqa: E402

FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
FRAME_S = 0.020
VOICED_DBFS = -40.0  # a frame louder than this counts as voiced speech

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
    """One caller utterance: 8 kHz PCM cut after its last voiced 20 ms frame."""

    text: str
    pcm: NDArray[np.int16]

    @property
    def seconds(self) -> float:
        return self.pcm.size / 8000


def synthesize(text: str, language: str, cache: Path) -> Utterance:
    """espeak-ng → 8 kHz PCM (the .wav is cached under ``cache``)."""
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
    # Trailing silence is the line's job: the emulator sends silence whenever nobody speaks.
    return Utterance(text=text, pcm=padded[: (int(voiced[-1]) + 1) * FRAME_BYTES].copy())


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
    stale_replies: int = 0
    seconds: float = 0.0
    media_in: int = 0
    marks_echoed: int = 0
    clears: int = 0
    max_lag_ms: float = 0.0
    resyncs: int = 0
    end_reason: str = ""
    setup_ms: float | None = None  # webhook + TwiML + WebSocket open
    prompt_ms: float | None = None  # stream open → first opening-prompt media


@dataclass(frozen=True)
class CallPlan:
    turns: int
    quiet_s: float  # silence after a reply has played before the caller speaks again
    greeting_timeout_s: float
    turn_timeout_s: float
    to_number: str
    min_latency_s: float  # anything faster cannot be the reply to this turn


async def run_call(
    index: int, emulator: TwilioEmulator, plan: CallPlan, utterances: Sequence[Utterance], start_at: float
) -> CallResult:
    """One emulated call starting at ``start_at`` (``time.monotonic``): wait for the
    opening prompt, then ``plan.turns`` times say → first reply audio → reply played out."""
    result = CallResult(index=index)
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    t0 = time.monotonic()
    call: EmulatedCall | None = None
    try:
        call = await emulator.place_call(to=plan.to_number, from_=f"+4915100{index:06d}")
        opened = time.monotonic()
        result.setup_ms = round(1000 * (opened - t0), 1)
        first_media = await _wait_prompt(call, plan)
        result.prompt_ms = round(1000 * (first_media - opened), 1)
        for turn in range(plan.turns):
            heard = len(call.latencies)
            await call.say(utterances[turn % len(utterances)].pcm)
            deadline = time.monotonic() + plan.turn_timeout_s
            while len(call.latencies) == heard and not call.ended.is_set():
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(FRAME_S)
            if len(call.latencies) == heard:
                # No answer: the caller hangs up (a late answer must not pass for the next reply).
                result.missed_turns += 1
                break
            if call.latencies[-1].seconds < plan.min_latency_s:
                # Audio this early is the tail of something said before (an overloaded server that
                # paused mid-prompt), not the reply: the turn failed.
                result.stale_replies += 1
                break
            await call.wait_until_quiet(plan.quiet_s, timeout_s=60)
        if call.ended.is_set():
            result.error = f"call ended early ({call.end_reason})"
        await call.hang_up()
    except Exception as exc:  # a failed call is a figure, not a crash of the generator
        result.error = f"{type(exc).__name__}: {exc}"[:300]
        if call is not None:
            with contextlib.suppress(Exception):
                await call.hang_up()
    result.seconds = time.monotonic() - t0
    if call is not None:
        result.latencies = [x.seconds for x in call.latencies if x.seconds >= plan.min_latency_s]
        result.media_in = call.media_in
        result.marks_echoed = len(call.marks_echoed)
        result.clears = call.clears
        result.max_lag_ms = round(1000 * call.max_lag_s, 2)
        result.resyncs = call.resyncs
        result.end_reason = call.end_reason
    result.ok = result.error is None and result.missed_turns == 0 and result.stale_replies == 0
    return result


async def _wait_prompt(call: EmulatedCall, plan: CallPlan) -> float:
    """The opening prompt (announcement, greeting) must have played out before the caller speaks;
    a server that sends none within ``greeting_timeout_s`` fails the call."""
    deadline = time.monotonic() + plan.greeting_timeout_s
    # The emulator exposes counters, not events, for arriving media: poll once per frame.
    while call.media_in == 0 and not call.ended.is_set() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(FRAME_S)
    if call.media_in == 0:
        # Both servers open with a prompt; one that arrives later would pass for a reply.
        raise TimeoutError(f"no opening prompt within {plan.greeting_timeout_s:.0f} s")
    first_media = time.monotonic()  # within one 20 ms poll of its arrival
    await call.wait_until_quiet(plan.quiet_s, timeout_s=60)
    return first_media


class LagProbe:
    """Event-loop lag of the generator: a task on the same absolute 20 ms schedule as the
    emulator's line clocks, recording how late it wakes. Every frame of every call on this
    loop is subject to the same delay (the emulator itself keeps only a per-call maximum)."""

    def __init__(self) -> None:
        self.lags: array[float] = array("d")
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        t0 = time.monotonic()
        n = 0
        while True:
            n += 1
            due = t0 + n * FRAME_S
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.lags.append(time.monotonic() - due)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _run_calls(
    indices: Sequence[int], offsets: Sequence[float], base: float, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], list[float]]:
    """Run some calls on this event loop; ``offsets`` are seconds after ``base`` (monotonic)."""
    plan = CallPlan(
        turns=args.turns,
        quiet_s=args.quiet_ms / 1000,
        greeting_timeout_s=args.greeting_timeout,
        turn_timeout_s=args.turn_timeout,
        to_number=args.to,
        min_latency_s=args.min_latency_ms / 1000,
    )
    utterances = load_utterances(args.language, Path(args.cache))
    limits = httpx.Limits(max_connections=max(20, len(indices)), max_keepalive_connections=50)
    probe = LagProbe()
    async with (
        httpx.AsyncClient(timeout=30, limits=limits, trust_env=False) as http,
        TwilioEmulator(args.url, args.auth_token, http=http, timeout_s=30) as emulator,
    ):
        probe.start()
        try:
            results = await asyncio.gather(
                *(run_call(i, emulator, plan, utterances, base + off) for i, off in zip(indices, offsets, strict=True))
            )
        finally:
            await probe.stop()
    return [asdict(r) for r in results], list(probe.lags)


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
        # The machine's and the processes' tick counters are read at slightly different
        # moments: on a quiet box the difference can come out a little below zero.
        return max(0.0, (self.machine_end - self.machine_start) - server - (self.self_end - self.self_start))

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
    indices: list[int], offsets: list[float], wall_start: float, args: argparse.Namespace
) -> tuple[list[dict[str, Any]], list[float]]:
    """A generator process: its share of the calls; ``wall_start`` is ``time.time()``-based."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        base = time.monotonic() + (wall_start - time.time())
        return runner.run(_run_calls(indices, offsets, base, args))


def _pct(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if len(values) else None


def _ms_pct(values_ms: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(values_ms), q)), 1) if values_ms else None


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
            key = c["error"] or ("stale audio taken for a reply" if c["stale_replies"] else "turn unanswered")
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
        "call_max_lag_ms": max((c["max_lag_ms"] for c in calls), default=None),
        "setup_p50_ms": _ms_pct([c["setup_ms"] for c in calls if c["setup_ms"] is not None], 50),
        "setup_p95_ms": _ms_pct([c["setup_ms"] for c in calls if c["setup_ms"] is not None], 95),
        "prompt_p50_ms": _ms_pct([c["prompt_ms"] for c in calls if c["prompt_ms"] is not None], 50),
        "prompt_p95_ms": _ms_pct([c["prompt_ms"] for c in calls if c["prompt_ms"] is not None], 95),
        "line_resyncs": sum(c["resyncs"] for c in calls),
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
    await asyncio.to_thread(load_utterances, args.language, Path(args.cache))  # synthesise once, up front
    offsets = [args.ramp * i / (args.calls - 1) if args.calls > 1 else 0.0 for i in range(args.calls)]
    procs = max(1, min(args.procs, args.calls))
    t0 = time.perf_counter()
    calls: list[dict[str, Any]] = []
    lags: list[float] = []
    async with ServerMonitor(args.server_pid) as monitor:
        if procs == 1:
            calls, lags = await _run_calls(range(args.calls), offsets, time.monotonic() + 0.5, args)
        else:
            loop = asyncio.get_running_loop()
            wall_start = time.time() + 1.0 + 0.5 * procs
            with ProcessPoolExecutor(procs) as pool:
                parts = [
                    loop.run_in_executor(
                        pool, _worker, list(range(p, args.calls, procs)), offsets[p::procs], wall_start, args
                    )
                    for p in range(procs)
                ]
                for part_calls, part_lags in await asyncio.gather(*parts):
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
    p.add_argument("--min-latency-ms", type=float, default=300, help="faster 'replies' are stale audio: the turn fails")
    p.add_argument("--nice", type=int, default=-5, help="scheduling priority of the generator (it plays the carrier)")
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
