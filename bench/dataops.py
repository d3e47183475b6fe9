"""Data-operations benchmark (issue 6): DSAR export, retention sweep, PII redaction, call list.

``python bench/dataops.py [--calls 1000000 --subjects 2000] [--database-url URL] [--out bench/out/dataops.json]``

The dataset comes from ``dataops_gen.py`` (cached under ``bench/out/``; generated on first
use). All timings run on a working copy of it (``bench/out/dataops-work``, deleted at the
end), so the cached dataset stays as generated. The clock is fixed at the dataset's
reference time, so the sweep finds the same expired records however old the cache is.

1. Call list: ``store.repos.calls.list_calls`` (50 per page, newest first, keyset cursor),
   200 pages in a fixed random order of kinds: first page, first page by status, deep
   pages (cursor at a random point of the two years), deep pages by status (``completed``,
   ``failed``); each in its own session, as a dashboard request would be.
2. DSAR export of the subject with ≈ 500 calls: ``do_create_request`` (access, by phone) →
   ``do_confirm_by_staff`` → ``do_export`` to a temporary ZIP; several runs; the SQL
   statements of one export are counted.
3. PII redaction per turn: ``default_redactor().redact`` over the German and English test
   sets (``tests/data/redaction/{de,en}.yaml``), each turn several times after a warm-up.
4. Retention sweep over the tenant: first ``dry_run=True``, then the real sweep; records/s
   = ``SweepReport.records`` (removed or anonymised) per wall second.

"other CPU s" = busy CPU seconds of other processes during each step (``/proc/stat`` minus
this process), as in ``run.py``. Benchmarks print figures; nothing here fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import datetime as dt
import io
import json
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import dataops_gen as gen  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy import event  # noqa: E402

from voicedesk.bootstrap import open_vault  # noqa: E402
from voicedesk.clock import FixedClock  # noqa: E402
from voicedesk.privacy import dsar  # noqa: E402
from voicedesk.privacy.export import do_export  # noqa: E402
from voicedesk.privacy.redaction import ContactData, default_redactor  # noqa: E402
from voicedesk.privacy.retention import run_sweep  # noqa: E402
from voicedesk.store.repos.calls import CallCursor, list_calls  # noqa: E402
from voicedesk.store.vault import Vault  # noqa: E402

OUT = BENCH / "out"
ROOT = BENCH.parent
ACTOR = "bench:staff"


# --- measuring -----------------------------------------------------------------------------------

def machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (``/proc/stat``: all but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(values) - values[3] - (values[4] if len(values) > 4 else 0)
    return busy / os.sysconf("SC_CLK_TCK")


class Load:
    """Wall time, this process's CPU time and other processes' busy CPU over a block."""

    def __init__(self) -> None:
        self.wall = self.own = self.other = 0.0

    @contextmanager
    def measure(self) -> Iterator[Load]:
        w, c, m = time.perf_counter(), time.process_time(), machine_busy_s()
        try:
            yield self
        finally:
            self.wall = time.perf_counter() - w
            self.own = time.process_time() - c
            self.other = max(0.0, machine_busy_s() - m - self.own)


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s) + 0.5) - 1))]


def ms_stats(samples: Sequence[float]) -> dict[str, float]:
    ms = [1000 * s for s in samples]
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 2), "p95_ms": round(pct(ms, 0.95), 2),
            "p99_ms": round(pct(ms, 0.99), 2), "max_ms": round(max(ms), 2)}


class StatementCounter:
    """SQL statements issued on an engine, by their first words, with the seconds they took.

    The time is from before to after the cursor's execute (for aiosqlite: the worker
    thread running the statement, as the caller waits for it); commits are not included.
    """

    def __init__(self, vault: Vault) -> None:
        self.engine = vault.db.engine.sync_engine
        self.counts: collections.Counter[str] = collections.Counter()
        self.seconds: collections.Counter[str] = collections.Counter()
        self._started: dict[int, tuple[str, float]] = {}

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        words = statement.split()
        table = next((w for i, w in enumerate(words) if i and words[i - 1].upper() in {"FROM", "INTO", "UPDATE"}), "")
        kind = f"{words[0].upper()} {table}".strip()
        self.counts[kind] += 1
        self._started[id(conn)] = (kind, time.perf_counter())

    def _after(self, conn: Any, *args: Any) -> None:
        kind, t = self._started.pop(id(conn), ("?", time.perf_counter()))
        self.seconds[kind] += time.perf_counter() - t

    def __enter__(self) -> StatementCounter:
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)

    def top(self, n: int = 10) -> dict[str, list[float]]:
        """``{kind: [count, seconds]}`` of the ``n`` kinds that took longest."""
        return {k: [self.counts[k], round(s, 2)] for k, s in self.seconds.most_common(n)}


def top_profile(profile: cProfile.Profile, n: int = 12, sort: str = "cumulative") -> list[str]:
    buf = io.StringIO()
    pstats.Stats(profile, stream=buf).sort_stats(sort).print_stats(n)
    lines = [ln.rstrip() for ln in buf.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
    return lines[start:start + n + 1]


# --- 1. call list --------------------------------------------------------------------------------

async def bench_call_list(vault: Vault, meta: dict[str, Any], pages: int) -> dict[str, Any]:
    tid = uuid.UUID(meta["tenant_id"])
    anchor = dt.datetime.fromisoformat(meta["anchor"])
    rng = random.Random(7)
    kinds = ["first", "first:completed", "first:failed", "deep", "deep:completed", "deep:failed", "next"]
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    rows_seen = 0
    load = Load()
    deep_cursor: CallCursor | None = None
    with load.measure():
        for i in range(pages):
            kind = kinds[i % len(kinds)] if i >= len(kinds) else kinds[i]
            kind = rng.choice(kinds) if i >= 2 * len(kinds) else kind
            base, _, status = kind.partition(":")
            after = None
            if base == "deep":
                at = anchor - gen.SPAN * rng.random()
                after = CallCursor(at, uuid.UUID(int=2**128 - 1))
            elif base == "next":
                after = deep_cursor  # the page after a previous deep page (the dashboard's "next")
            t = time.perf_counter()
            async with vault.db.sessions() as s:
                rows, cursor = await list_calls(s, tid, status=status or None, limit=50, after=after)
            samples[kind].append(time.perf_counter() - t)
            rows_seen += len(rows)
            if base == "deep" and cursor is not None:
                deep_cursor = cursor
    everything = [x for v in samples.values() for x in v]
    return {"pages": len(everything), "rows": rows_seen, **ms_stats(everything),
            "by_kind": {k: ms_stats(v) for k, v in samples.items() if v},
            "wall_s": round(load.wall, 2), "other_cpu_s": round(load.other, 1)}


# --- 2. DSAR export ------------------------------------------------------------------------------

async def bench_export(vault: Vault, meta: dict[str, Any], runs: int) -> dict[str, Any]:
    totals: list[float] = []
    exports: list[float] = []
    report_counts: dict[str, int] = {}
    size = 0
    other = 0.0
    statements: collections.Counter[str] = collections.Counter()
    statement_s = 0.0
    profile_lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="vd-dsar-") as tmp:
        for i in range(runs + 1):  # run 0 warms caches (DEK, imports) and is profiled, not counted
            load = Load()
            with load.measure():
                t0 = time.perf_counter()
                view = await dsar.do_create_request(vault, meta["tenant_slug"], "access",
                                                    phone=meta["dsar_subject_phone"], actor=ACTOR)
                await dsar.do_confirm_by_staff(vault, view.id, actor=ACTOR)
                t1 = time.perf_counter()
                out = Path(tmp) / f"export-{i}.zip"
                if i == 0:
                    prof = cProfile.Profile()
                    with StatementCounter(vault) as counter:
                        prof.enable()
                        report = await do_export(vault, view.id, out, actor=ACTOR, processors=[])
                        prof.disable()
                    statements = counter.counts
                    statement_s = round(sum(counter.seconds.values()), 3)
                    profile_lines = top_profile(prof)
                else:
                    report = await do_export(vault, view.id, out, actor=ACTOR, processors=[])
                t2 = time.perf_counter()
            if i == 0:
                warm = t2 - t1
                continue
            totals.append(t2 - t0)
            exports.append(t2 - t1)
            other += load.other
            report_counts, size = report.counts, report.size_bytes
    return {"runs": runs, "subject_calls": meta["dsar_subject_calls"], "counts": report_counts,
            "audio_files": meta.get("dsar_subject_blobs"), "zip_bytes": size,
            "export_p50_s": round(statistics.median(exports), 3), "export_max_s": round(max(exports), 3),
            "total_p50_s": round(statistics.median(totals), 3), "total_max_s": round(max(totals), 3),
            "first_run_profiled_s": round(warm, 3), "statements": dict(statements.most_common(12)),
            "statements_total": sum(statements.values()), "statements_s_profiled_run": statement_s,
            "profile": profile_lines,
            "other_cpu_s": round(other, 1)}


# --- 3. redaction --------------------------------------------------------------------------------

def bench_redaction(repeat: int) -> dict[str, Any]:
    t = time.perf_counter()
    redactor = default_redactor()
    build_s = time.perf_counter() - t
    out: dict[str, Any] = {"build_s": round(build_s, 2)}
    for lang in ("de", "en"):
        doc = yaml.safe_load((ROOT / "tests" / "data" / "redaction" / f"{lang}.yaml").read_text(encoding="utf-8"))
        turns = [(t["text"], ContactData(**{k: tuple(v) for k, v in (t.get("contact") or {}).items()}))
                 for t in doc["turns"]]
        for text, contact in turns:  # warm-up (lazy patterns, name lists)
            redactor.redact(text, lang, contact=contact)
        samples: list[float] = []
        load = Load()
        with load.measure():
            for _ in range(repeat):
                for text, contact in turns:
                    t = time.perf_counter()
                    redactor.redact(text, lang, contact=contact)
                    samples.append(time.perf_counter() - t)
        out[lang] = {"turns": len(turns), **ms_stats(samples), "other_cpu_s": round(load.other, 1)}
    return out


# --- 4. retention sweep --------------------------------------------------------------------------

async def bench_sweep(vault: Vault, meta: dict[str, Any], *, dry_run: bool, profile: bool) -> dict[str, Any]:
    tid = uuid.UUID(meta["tenant_id"])
    load = Load()
    prof = cProfile.Profile() if profile else None
    with StatementCounter(vault) as counter, load.measure():
        if prof is not None:
            prof.enable()
        report = await run_sweep(vault, tenant_id=tid, dry_run=dry_run)
        if prof is not None:
            prof.disable()
    records = report.records
    return {"dry_run": dry_run, "wall_s": round(load.wall, 2), "records": records,
            "records_per_s": round(records / load.wall) if load.wall else None, "totals": report.totals(),
            "complete": report.complete, "statements_total": sum(counter.counts.values()),
            "statements": dict(counter.counts.most_common(8)), "statement_seconds": counter.top(),
            "statement_s_total": round(sum(counter.seconds.values()), 1), "own_cpu_s": round(load.own, 1),
            "other_cpu_s": round(load.other, 1), "profile": top_profile(prof, 30) if prof is not None else [],
            "profile_tottime": top_profile(prof, 25, "tottime") if prof is not None else []}


_ANONYMISE = (
    ", duration_s = (duration_s + 5) / 10 * 10, anonymised_at = :now, subject_id = NULL, from_enc = NULL, "
    "caller_name_enc = NULL, summary_enc = NULL, provider_call_id = NULL, to_number = NULL, answered_at = NULL, "
    "ended_at = NULL, instance_id = NULL, recording_consent = NULL, twiml_answer = NULL "
    "WHERE tenant_id = :t AND started_at < :cut AND anonymised_at IS NULL"
)


async def bench_sweep_floor(vault: Vault, meta: dict[str, Any]) -> dict[str, Any]:
    """What set-based SQL does on the same data: the sweep's three call walks as one statement each.

    Not the sweep (no batches, no resumable progress, no holds, days cut in UTC rather
    than the tenant's zone, no blob deletes): a floor for what a set-based design could
    reach on this backend and box. Run it alone (``--steps sweep_floor``) on a fresh copy.
    """
    from sqlalchemy import text

    tid = uuid.UUID(meta["tenant_id"])
    anchor = dt.datetime.fromisoformat(meta["anchor"])
    sqlite = vault.db.is_sqlite
    p_tid: Any = tid.hex if sqlite else tid

    def cut(days: int) -> Any:
        at = anchor - dt.timedelta(days=days)
        return gen._ts(at) if sqlite else at

    meta_cut, tr_cut, rec_cut = cut(365), cut(180), cut(90)
    calls_in = "SELECT id FROM calls WHERE tenant_id = :t AND started_at < :cut AND anonymised_at IS NULL"
    day_of = "strftime('%Y-%m-%d 00:00:00.000000', started_at)" if sqlite else "date_trunc('day', started_at)"
    day = "UPDATE calls SET started_at = " + day_of  # noqa: S608
    steps = [
        ("recordings of expired-metadata calls", f"DELETE FROM recordings WHERE call_id IN ({calls_in})", meta_cut),  # noqa: S608
        ("turns of expired-metadata calls", f"DELETE FROM turns WHERE call_id IN ({calls_in})", meta_cut),  # noqa: S608
        ("consents unlinked", f"UPDATE consents SET call_id = NULL WHERE call_id IN ({calls_in})", meta_cut),  # noqa: S608
        ("calls anonymised", day + _ANONYMISE, meta_cut),
        ("turns expired", f"DELETE FROM turns WHERE call_id IN ({calls_in})", tr_cut),  # noqa: S608
        ("recordings expired", f"DELETE FROM recordings WHERE call_id IN ({calls_in})", rec_cut),  # noqa: S608
    ]
    out: dict[str, Any] = {"steps": {}}
    total = 0
    load = Load()
    with load.measure():
        async with vault.db.engine.begin() as conn:
            for label, sql, at in steps:
                t = time.perf_counter()
                res = await conn.execute(text(sql), {"t": p_tid, "cut": at, "now": gen._ts(anchor) if sqlite
                                                     else anchor})
                n = int(res.rowcount or 0)
                total += 0 if label == "consents unlinked" else n
                out["steps"][label] = [n, round(time.perf_counter() - t, 2)]
    out.update(records=total, wall_s=round(load.wall, 2), records_per_s=round(total / load.wall),
               other_cpu_s=round(load.other, 1))
    return out


# --- orchestration -------------------------------------------------------------------------------

def _copy_dataset(src: Path, dst: Path) -> float:
    t = time.perf_counter()
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    (dst / "meta.json").unlink(missing_ok=True)
    return time.perf_counter() - t


async def run(args: argparse.Namespace) -> dict[str, Any]:
    pg = args.database_url
    steps = set(args.steps.split(","))
    data_dir, meta = await gen.ensure_dataset(args.calls, args.subjects, args.turn_days, database_url=pg)
    work = data_dir if pg else OUT / "dataops-work"
    result: dict[str, Any] = {"dataset": {k: meta[k] for k in ("counts", "generation_s", "bulk_s", "generated_on",
                                                                "turn_days", "anchor", "generator_version")},
                              "backend": "postgresql" if pg else "sqlite"}
    if meta.get("db_bytes"):
        result["dataset"]["db_mb"] = round(meta["db_bytes"] / 2**20)
    if not pg:
        result["copy_s"] = round(_copy_dataset(data_dir, work), 1)
    anchor = dt.datetime.fromisoformat(meta["anchor"])
    vault = await open_vault(gen.bench_settings(work, pg), clock=FixedClock(anchor))
    try:
        if "call_list" in steps:
            print(f"[dataops] call list: {args.pages} pages …", flush=True)
            result["call_list"] = await bench_call_list(vault, meta, args.pages)
            print(f"[dataops]   p50 {result['call_list']['p50_ms']} ms, p95 {result['call_list']['p95_ms']} ms, "
                  f"p99 {result['call_list']['p99_ms']} ms", flush=True)
        if "export" in steps:
            print(f"[dataops] DSAR export of a subject with {meta['dsar_subject_calls']} calls, "
                  f"{args.export_runs} runs …", flush=True)
            result["export"] = await bench_export(vault, meta, args.export_runs)
            print(f"[dataops]   export p50 {result['export']['export_p50_s']} s, "
                  f"max {result['export']['export_max_s']} s ({result['export']['statements_total']} SQL statements)",
                  flush=True)
        if "redaction" in steps:
            print("[dataops] redaction per turn …", flush=True)
            result["redaction"] = await asyncio.to_thread(bench_redaction, args.redaction_repeat)
            for lang in ("de", "en"):
                r = result["redaction"][lang]
                print(f"[dataops]   {lang}: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms",
                      flush=True)
        if "sweep_dry_run" in steps:
            print("[dataops] retention sweep, dry run …", flush=True)
            result["sweep_dry_run"] = await bench_sweep(vault, meta, dry_run=True, profile=False)
            print(f"[dataops]   {result['sweep_dry_run']['records']:,} records in "
                  f"{result['sweep_dry_run']['wall_s']} s", flush=True)
        if "sweep" in steps:
            print("[dataops] retention sweep …", flush=True)
            result["sweep"] = await bench_sweep(vault, meta, dry_run=False, profile=args.profile_sweep)
            print(f"[dataops]   {result['sweep']['records']:,} records in {result['sweep']['wall_s']} s = "
                  f"{result['sweep']['records_per_s']:,} records/s", flush=True)
            if pg:  # the sweep consumed the PostgreSQL dataset: regenerate next time
                (data_dir / "meta.json").unlink(missing_ok=True)
        if "sweep_floor" in steps:
            print("[dataops] set-based floor of the sweep (one statement per step) …", flush=True)
            result["sweep_floor"] = await bench_sweep_floor(vault, meta)
            print(f"[dataops]   {result['sweep_floor']}", flush=True)
            if pg:
                (data_dir / "meta.json").unlink(missing_ok=True)
    finally:
        await vault.close()
        if not pg and not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    return result


def table(d: dict[str, Any]) -> str:
    """The Markdown tables ``run.py`` puts in RESULTS.md."""
    ds = d["dataset"]
    c = ds["counts"]
    lines = [
        f"Dataset ({d['backend']}): {c['calls']:,} calls over {c['subjects']:,} subjects of one tenant, "
        f"{c['turns']:,} turns (4 per answered call of the last {ds['turn_days']} days), {c['consents']:,} consents, "
        f"{c['recordings']:,} recording rows, {c['appointments']:,} appointments"
        + (f"; {ds['db_mb']:,} MB" if ds.get("db_mb") else "")
        + f". Generated in {ds['generation_s']} s (bulk inserts {ds['bulk_s']} s) on {ds['generated_on']}, "
        "cached for later runs.",
        "",
        "| operation | figure | target | other CPU s |",
        "|---|---|---|---|",
    ]
    cl = d.get("call_list")
    if cl:
        lines.append(f"| call list, 50 per page ({cl['pages']} pages: first/deep/next, ± status) "
                     f"| p50 {cl['p50_ms']} ms, p95 {cl['p95_ms']} ms, p99 {cl['p99_ms']} ms "
                     f"| p95 ≤ 100 ms {'✓' if cl['p95_ms'] <= 100 else '✗'} | {cl['other_cpu_s']} |")
    ex = d.get("export")
    if ex:
        lines.append(f"| DSAR export, {ex['subject_calls']} calls, {ex['counts'].get('turns', 0)} turns, "
                     f"{ex['audio_files']} audio files ({ex['runs']} runs) "
                     f"| p50 {ex['export_p50_s']} s, max {ex['export_max_s']} s "
                     f"(with request + verification p50 {ex['total_p50_s']} s) "
                     f"| ≤ 1 s {'✓' if ex['export_p50_s'] <= 1.0 else '✗'} | {ex['other_cpu_s']} |")
    sw = d.get("sweep")
    if sw:
        tot = ", ".join(f"{cat} {'/'.join(f'{a} {n:,}' for a, n in acts.items())}"
                        for cat, acts in sw["totals"].items())
        lines.append(f"| retention sweep ({tot}) | {sw['records']:,} records in {sw['wall_s']} s = "
                     f"**{sw['records_per_s']:,} records/s** "
                     f"| ≥ 50,000/s {'✓' if sw['records_per_s'] >= 50_000 else '✗'} | {sw['other_cpu_s']} |")
    dr = d.get("sweep_dry_run")
    if dr:
        lines.append(f"| retention sweep, dry run | {dr['records']:,} records in {dr['wall_s']} s = "
                     f"{dr['records_per_s']:,} records/s | – | {dr['other_cpu_s']} |")
    rd = d.get("redaction")
    if rd:
        for lang in ("de", "en"):
            r = rd[lang]
            lines.append(f"| PII redaction per turn, {lang} ({r['turns']} turns × {r['n'] // r['turns']}) "
                         f"| p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms "
                         f"| p95 ≤ 20 ms {'✓' if r['p95_ms'] <= 20 else '✗'} | {r['other_cpu_s']} |")
    if cl:
        lines += ["", "Call list by page kind (ms):", "", "| kind | n | p50 | p95 | max |", "|---|---|---|---|---|"]
        for kind, s in cl["by_kind"].items():
            lines.append(f"| {kind} | {s['n']} | {s['p50_ms']} | {s['p95_ms']} | {s['max_ms']} |")
    if ex:
        lines += ["", f"SQL statements of one export: {ex['statements_total']} "
                  f"({', '.join(f'{k} ×{v}' for k, v in ex['statements'].items())})."]
    if sw:
        slow = ", ".join(f"{k} ×{c:,} {t} s" for k, (c, t) in sw["statement_seconds"].items())
        lines += ["", f"SQL statements of the sweep: {sw['statements_total']:,} taking {sw['statement_s_total']} s of "
                  f"{sw['wall_s']} s wall ({slow}); the process's own CPU {sw['own_cpu_s']} s (both threads)."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=1_000_000)
    p.add_argument("--subjects", type=int, default=2_000)
    p.add_argument("--turn-days", type=int, default=270)
    p.add_argument("--database-url", default=None, help="PostgreSQL URL (postgresql+asyncpg://…); default SQLite")
    p.add_argument("--pages", type=int, default=200, help="call-list pages")
    p.add_argument("--export-runs", type=int, default=5)
    p.add_argument("--redaction-repeat", type=int, default=5)
    p.add_argument("--steps", default="call_list,export,redaction,sweep_dry_run,sweep",
                   help="comma list of steps (default: all of these; sweep_floor only when named)")
    p.add_argument("--profile-sweep", action="store_true", help="cProfile the real sweep (slows it down)")
    p.add_argument("--keep-work", action="store_true", help="keep bench/out/dataops-work after the run")
    p.add_argument("--out", default=str(OUT / "dataops.json"))
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    result = asyncio.run(run(args))
    result["total_s"] = round(time.monotonic() - t0, 1)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    print(table(result))
    print(f"[dataops] done in {result['total_s']} s; wrote {args.out}")


if __name__ == "__main__":
    main()
