"""Data-operations dataset for the benchmark (issue 6): one tenant, 1,000,000 calls, 2,000 subjects.

``python bench/dataops_gen.py [--calls N --subjects N --turn-days D] [--database-url URL]``

What is generated (everything personal encrypted with real AES-256-GCM under the subjects'
real data keys, wrapped by the tenant key in the key store, exactly as ``store.crypto`` does):

- the demo tenant ``praxis-mueller`` (``do_create_tenant``), retention 90 / 180 days /
  12 months (recordings / transcripts / call metadata);
- 2,000 subjects with a DEK each and a contact (names, phone, e-mail, address);
- 1,000,000 calls spread evenly over the two years before the dataset's reference time
  (``meta.json``), each of a random subject (≈ 500 calls per subject), with caller number,
  caller name and summary encrypted; statuses, outcomes and durations drawn from a fixed mix;
- four turns (caller / assistant, encrypted) for every call of the last ``--turn-days``
  days (default 270: transcripts of the last 180 days are live data, the 90 days before
  them are what the sweep deletes); older calls have none, as if their transcripts had
  been swept — generating 4 M encrypted turns would cost minutes for no extra insight;
- a recording consent record for 25 % of the calls, a recording row for the granted ones
  (the audio blob itself exists only for the DSAR subject's calls of the last 90 days);
- an appointment (+ "booked" event) for the calls whose outcome is ``appointment_booked``.

SQLite (default): bulk ``executemany`` through the stdlib driver on a generation-only
connection (WAL, ``synchronous=OFF``, large page cache, no FK checks), values converted to
SQLAlchemy's SQLite storage formats; the read-back check at the end loads rows through the
ORM and decrypts them through the ``KeyRing``. PostgreSQL (``--database-url``): asyncpg
``COPY`` into schema ``bench_dataops_v<N>_…`` named like the cache directory (keys in ``…_keys``).

The SQLite dataset is cached in ``bench/out/dataops-v<GEN_VERSION>-<calls>/`` and reused
while ``meta.json`` says it is complete; bump ``GEN_VERSION`` when the generator changes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from voicedesk.bootstrap import open_vault  # noqa: E402
from voicedesk.clock import FixedClock  # noqa: E402
from voicedesk.config import Settings  # noqa: E402
from voicedesk.store.crypto import VERSION as CIPHER_VERSION  # noqa: E402
from voicedesk.store.crypto import seal  # noqa: E402  # noqa: E402
from voicedesk.store.keystore import DataKey  # noqa: E402
from voicedesk.store.models import (  # noqa: E402
    Appointment,
    AppointmentEvent,
    Call,
    Consent,
    Contact,
    Recording,
    Subject,
    Turn,
)
from voicedesk.store.vault import Vault  # noqa: E402
from voicedesk.tenancy.service import do_create_tenant, load_profile_file  # noqa: E402

GEN_VERSION = 2  # 2: schema at migration 0003 (leaner call and turn indexes)
SEED = 20261125
SPAN = dt.timedelta(days=730)
TENANT_SLUG = "praxis-mueller"
TO_NUMBER = "+4969123456780"

FIRST = ["Anna", "Thomas", "Jürgen", "Petra", "Sabine", "Michael", "Katrin", "Lukas", "Mia", "Leon", "Emma",
         "Jonas", "Hannah", "Felix", "Lea", "Paul", "Marie", "Elias", "Sophie", "Noah", "Aylin", "Mehmet"]
LAST = ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
        "Koch", "Bauer", "Richter", "Klein", "Wolf", "Kowalczyk", "Yılmaz", "Neumann", "Schwarz", "Braun"]
STREETS = ["Goethestraße", "Schillerweg", "Hauptstraße", "Bahnhofstraße", "Lindenallee", "Heinrich-Heine-Straße"]
CITIES = ["60311 Frankfurt", "40213 Düsseldorf", "50667 Köln", "65183 Wiesbaden", "64283 Darmstadt"]
# (status, outcome, weight)
MIX = [("completed", "appointment_booked", 15), ("completed", "information", 30), ("completed", "message_taken", 15),
       ("completed", "appointment_rescheduled", 5), ("completed", "appointment_cancelled", 4),
       ("completed", "forwarded", 8), ("completed", "abandoned", 5), ("no-answer", None, 6), ("busy", None, 2),
       ("failed", None, 3), ("canceled", None, 2), ("interrupted", None, 1), ("completed", "other", 4)]
SUMMARIES = ["Anrufer möchte einen Termin am {d}. um {h} Uhr; gebucht.",
             "Frage nach den Öffnungszeiten, beantwortet.",
             "Rückrufbitte wegen Befund; Nachricht an das Team.",
             "Termin verschoben auf den {d}., {h} Uhr.",
             "Anrufer wollte Frau Dr. Müller sprechen; weitergeleitet."]
ASSISTANT = ["Praxis Müller, guten Tag. Wie kann ich helfen?", "Gern. Darf ich Ihren Namen haben?",
             "Am Donnerstag um zehn Uhr wäre ein Termin frei. Passt das?", "Ich habe das notiert. Auf Wiederhören!"]


def _caller_lines() -> list[str]:
    import yaml

    lines: list[str] = []
    for lang in ("de", "en"):
        doc = yaml.safe_load((ROOT / "tests" / "data" / "redaction" / f"{lang}.yaml").read_text(encoding="utf-8"))
        if lang == "de":
            lines += [t["text"] for t in doc["turns"]]
    return lines or ["Ich hätte gern einen Termin."]


# --- storage formats --------------------------------------------------------------------------

def _hex(v: uuid.UUID | None) -> str | None:
    return None if v is None else v.hex


def _ts(v: dt.datetime | None) -> str | None:
    # SQLAlchemy's SQLite DateTime storage format; UTCDateTime stores naive UTC
    return None if v is None else v.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _bool(v: bool | None) -> int | None:
    return None if v is None else int(v)


class Sink:
    """Where generated rows go: tuples of Python values in ``columns`` order."""

    async def write(self, table: Any, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    async def set_contact_times(self, rows: list[tuple[dt.datetime, dt.datetime, uuid.UUID]]) -> None:
        """``(created_at, last_contact_at, id)`` of subjects written before their calls."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class SqliteSink(Sink):
    """stdlib sqlite3, one big transaction per file, values in SQLAlchemy's SQLite formats."""

    def __init__(self, db_path: Path, keys_path: Path) -> None:
        self.conns: dict[str, sqlite3.Connection] = {}
        for name, path in (("data", db_path), ("keys", keys_path)):
            conn = sqlite3.connect(path, isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=OFF", "foreign_keys=OFF", "cache_size=-1000000",
                           "temp_store=MEMORY"):
                conn.execute(f"PRAGMA {pragma}")
            conn.execute("BEGIN")
            self.conns[name] = conn
        # Secondary indexes of the bulk-loaded tables are dropped and rebuilt at the end (a sorted
        # build is several times faster than a million random inserts); unique ones stay.
        tables = ("calls", "turns", "consents", "recordings", "appointments", "appointment_events")
        data = self.conns["data"]
        self.indexes: list[tuple[str, str]] = data.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "  # noqa: S608
            f"AND sql NOT LIKE 'CREATE UNIQUE%' AND tbl_name IN ({', '.join('?' * len(tables))})", tables).fetchall()
        for name, _ in self.indexes:
            data.execute(f'DROP INDEX "{name}"')
        self.converters: dict[str, list[Callable[[Any], Any] | None]] = {}

    def _converters(self, table: Any, columns: Sequence[str]) -> list[Callable[[Any], Any] | None]:
        out: list[Callable[[Any], Any] | None] = []
        for name in columns:
            kind = type(table.c[name].type).__name__
            out.append({"Uuid": _hex, "UTCDateTime": _ts, "Boolean": _bool}.get(kind))
        return out

    async def write(self, table: Any, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        key = table.name
        conv = self.converters.get(key)
        if conv is None:
            conv = self.converters[key] = self._converters(table, columns)
        idx = [(i, f) for i, f in enumerate(conv) if f is not None]
        if idx:
            converted = []
            for row in rows:
                r = list(row)
                for i, f in idx:
                    r[i] = f(r[i])
                converted.append(r)
            rows = converted  # type: ignore[assignment]
        conn = self.conns["keys" if table.name == "data_keys" else "data"]
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608
        conn.executemany(sql, rows)

    async def set_contact_times(self, rows: list[tuple[dt.datetime, dt.datetime, uuid.UUID]]) -> None:
        self.conns["data"].executemany("UPDATE subjects SET created_at = ?, last_contact_at = ? WHERE id = ?",
                                       [(_ts(a), _ts(b), _hex(i)) for a, b, i in rows])

    async def close(self) -> None:
        for _, sql in self.indexes:
            self.conns["data"].execute(sql)
        for conn in self.conns.values():
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("ANALYZE")
            conn.close()


class PostgresSink(Sink):
    """asyncpg ``COPY`` through the vault's engines (one connection each, one transaction)."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.conns: dict[str, Any] = {}

    async def _conn(self, which: str) -> Any:
        if which not in self.conns:
            db = self.vault.keystore.db if which == "keys" else self.vault.db
            conn = await db.engine.connect()
            raw = await conn.get_raw_connection()
            tx = raw.driver_connection.transaction()  # type: ignore[union-attr]
            await tx.start()
            self.conns[which] = (conn, raw.driver_connection, tx, db.schema)
        return self.conns[which]

    async def write(self, table: Any, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        _, apg, _, schema = await self._conn("keys" if table.name == "data_keys" else "data")
        await apg.copy_records_to_table(table.name, records=rows, columns=list(columns), schema_name=schema)

    async def set_contact_times(self, rows: list[tuple[dt.datetime, dt.datetime, uuid.UUID]]) -> None:
        _, apg, _, _ = await self._conn("data")  # search_path is the data schema
        await apg.executemany("UPDATE subjects SET created_at = $1, last_contact_at = $2 WHERE id = $3", rows)

    async def close(self) -> None:
        for conn, apg, tx, _ in self.conns.values():
            await tx.commit()
            await apg.execute("ANALYZE")
            await conn.close()


# --- the generator -----------------------------------------------------------------------------

@dataclass
class Person:
    id: uuid.UUID
    key_id: uuid.UUID
    dek: bytes
    aead: AESGCM
    prefix: bytes  # CIPHER_VERSION + key_id bytes
    kid: str  # str(key_id), for the associated data
    first: str
    last: str
    phone: str
    calls: int = 0
    first_call: dt.datetime | None = None
    last_call: dt.datetime | None = None


class Encryptor:
    """``KeyRing.encrypt`` without the awaits: same format, same associated data, cached AEADs.

    ``row_id`` is the row id's ``str()`` (computed once per row); the associated data is
    ``store.crypto.field_aad``'s, built from pre-formatted strings (``check`` decrypts
    samples through the ``KeyRing`` to prove they agree).
    """

    def __init__(self, tenant_id: uuid.UUID) -> None:
        self.tid = str(tenant_id)

    def __call__(self, p: Person, value: str | None, table: str, row_id: str, column: str) -> bytes | None:
        if value is None:
            return None
        nonce = os.urandom(12)
        aad = f"v1|{self.tid}|{table}|{row_id}|{column}|{p.kid}".encode()
        return p.prefix + nonce + p.aead.encrypt(nonce, value.encode(), aad)


def _cols(model: Any, names: str) -> tuple[Any, list[str]]:
    return model.__table__, names.split()


CALL_COLS = _cols(Call, "id tenant_id subject_id provider provider_call_id direction from_enc caller_name_enc "
                        "to_number language status started_at answered_at ended_at duration_s outcome summary_enc "
                        "recording_consent")
TURN_COLS = _cols(Turn, "id tenant_id call_id seq speaker text_enc tool_calls_enc start_ms end_ms interrupted "
                        "created_at")
CONSENT_COLS = _cols(Consent, "id tenant_id call_id subject_id purpose decision method decided_at text_version "
                              "text_sha256")
REC_COLS = _cols(Recording, "id tenant_id call_id blob_key track channels sample_rate codec offset_ms size_bytes "
                            "duration_ms e2e created_at completed_at")
APPT_COLS = _cols(Appointment, "id tenant_id subject_id call_id service_id staff_id start_at end_at status notes_enc "
                               "preferences_enc created_at updated_at")
EVENT_COLS = _cols(AppointmentEvent, "id tenant_id appointment_id kind actor at data")
SUBJECT_COLS = _cols(Subject, "id tenant_id key_id phone_idx email_idx restricted objected created_at "
                              "last_contact_at")
CONTACT_COLS = _cols(Contact, "id tenant_id subject_id first_name_enc last_name_enc email_enc phone_enc address_enc "
                              "company_enc customer_ref_enc source updated_at")
DATAKEY_COLS = (DataKey.__table__, ["key_id", "tenant_id", "wrapped", "created_at"])


def _uuids(rng: random.Random, n: int) -> list[uuid.UUID]:
    """Version-4 UUIDs from the seeded generator (reproducible ids, no os.urandom per row)."""
    out = []
    for _ in range(n):
        b = bytearray(rng.getrandbits(128).to_bytes(16, "big"))
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        out.append(uuid.UUID(bytes=bytes(b)))
    return out


async def generate(vault: Vault, sink_factory: Callable[[], Sink], *, calls: int, subjects: int, turn_days: int,
                   anchor: dt.datetime, log: Callable[[str], None], before_bulk: Callable[[], Any] | None = None,
                   ) -> dict[str, Any]:
    rng = random.Random(SEED)
    profile = load_profile_file(ROOT / "examples" / f"{TENANT_SLUG}.yaml")
    tenant = await do_create_tenant(vault, profile, actor="bench:dataops")
    tid = tenant.id
    tkeys = await vault.keys.tenant(tid)
    people: list[Person] = []
    for i, sid in enumerate(_uuids(rng, subjects)):
        key_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        dek = os.urandom(32)
        phone = f"+49176{10_000_000 + i:08d}"
        people.append(Person(sid, key_id, dek, AESGCM(dek), CIPHER_VERSION + key_id.bytes, str(key_id),
                             rng.choice(FIRST), rng.choice(LAST), phone))
    phone_idx = {p.id: await vault.keys.blind_index(tid, "phone", p.phone) for p in people}
    email_idx = {p.id: await vault.keys.blind_index(tid, "email", f"{p.first}.{p.last}{i}@example.org".lower())
                 for i, p in enumerate(people)}
    if before_bulk is not None:
        await before_bulk()
    sink = sink_factory()
    enc = Encryptor(tid)
    t0 = time.perf_counter()
    # data keys, wrapped like KeyRing.new_data_key
    await sink.write(*DATAKEY_COLS, [
        (p.key_id, tid, seal(tkeys.wrap, p.dek, f"dek|{tid}|{p.key_id}".encode()), anchor - SPAN) for p in people])
    # subjects before their calls (PostgreSQL checks the foreign keys); times set once the calls are known
    await sink.write(*SUBJECT_COLS, [(p.id, tid, p.key_id, phone_idx[p.id], email_idx[p.id], False, False, anchor,
                                      anchor) for p in people])
    caller_lines = _caller_lines()
    statuses = [m[:2] for m in MIX]
    weights = [m[2] for m in MIX]
    start = anchor - SPAN
    step = SPAN / calls
    turn_from = anchor - dt.timedelta(days=turn_days)
    rec_from = anchor - dt.timedelta(days=90)
    counts = {"calls": 0, "turns": 0, "consents": 0, "recordings": 0, "appointments": 0}
    chunk = 20_000
    recent_recordings: list[tuple[Person, uuid.UUID, str, int]] = []
    sha = hashlib.sha256(b"Aufzeichnungshinweis v1").hexdigest()
    for base in range(0, calls, chunk):
        n = min(chunk, calls - base)
        ids = _uuids(rng, n)
        call_rows: list[tuple[Any, ...]] = []
        turn_rows: list[tuple[Any, ...]] = []
        consent_rows: list[tuple[Any, ...]] = []
        rec_rows: list[tuple[Any, ...]] = []
        appt_rows: list[tuple[Any, ...]] = []
        event_rows: list[tuple[Any, ...]] = []
        mixes = rng.choices(statuses, weights, k=n)
        for j in range(n):
            cid = ids[j]
            cs = str(cid)
            p = people[rng.randrange(subjects)]
            started = start + step * (base + j) + dt.timedelta(seconds=rng.randrange(0, 30))
            status, outcome = mixes[j]
            answered = started + dt.timedelta(seconds=2) if status == "completed" else None
            duration = rng.randrange(20, 400) if answered else 0
            ended = started + dt.timedelta(seconds=duration + 3)
            consent = None
            r = rng.random()
            if answered and r < 0.25:
                consent = "granted" if r < 0.15 else "refused"
            day = started + dt.timedelta(days=rng.randrange(1, 20))
            summary = SUMMARIES[j % len(SUMMARIES)].format(d=day.day, h=9 + j % 8) if answered else None
            call_rows.append((
                cid, tid, p.id, "twilio", f"CA{cid.hex}", "inbound", enc(p, p.phone, "calls", cs, "from"),
                enc(p, f"{p.first} {p.last}", "calls", cs, "caller_name"), TO_NUMBER, "de", status, started,
                answered, ended, duration, outcome, enc(p, summary, "calls", cs, "summary"), consent))
            p.calls += 1
            p.first_call = p.first_call or started
            p.last_call = started
            if answered and started >= turn_from:
                for seq in range(4):
                    tid_ = uuid.UUID(int=rng.getrandbits(128), version=4)
                    speaker = "assistant" if seq % 2 == 0 else "caller"
                    text = ASSISTANT[seq] if speaker == "assistant" else caller_lines[rng.randrange(len(caller_lines))]
                    turn_rows.append((tid_, tid, cid, seq, speaker, enc(p, text, "turns", str(tid_), "text"), None,
                                      seq * 4000, seq * 4000 + 3500, False, started + dt.timedelta(seconds=4 * seq)))
            if consent:
                consent_rows.append((uuid.UUID(int=rng.getrandbits(128), version=4), tid, cid, p.id, "recording",
                                     consent, "voice", started + dt.timedelta(seconds=5), "1", sha))
                if consent == "granted":
                    rid = uuid.UUID(int=rng.getrandbits(128), version=4)
                    blob_key = f"rec/{tid.hex}/{cid.hex}-caller"
                    ms = duration * 1000
                    rec_rows.append((rid, tid, cid, blob_key, "caller", 1, 8000, "pcm_s16le", 0, ms * 16, ms, False,
                                     started, ended))
                    if started >= rec_from:
                        recent_recordings.append((p, rid, blob_key, ms))
            if outcome == "appointment_booked":
                aid = uuid.UUID(int=rng.getrandbits(128), version=4)
                at = day.replace(hour=9 + j % 8, minute=0, second=0, microsecond=0)
                appt_rows.append((aid, tid, p.id, cid, "checkup", "dr-mueller", at, at + dt.timedelta(minutes=30),
                                  "completed" if at < anchor else "booked",
                                  enc(p, "Kontrolle, bitte Befunde mitbringen", "appointments", str(aid), "notes"),
                                  enc(p, '{"time_of_day": "morning"}', "appointments", str(aid), "preferences"),
                                  started, started))
                event_rows.append((uuid.UUID(int=rng.getrandbits(128), version=4), tid, aid, "booked",
                                   "assistant", started, json.dumps({"call": str(cid)})))
        await sink.write(*CALL_COLS, call_rows)
        if turn_rows:
            await sink.write(*TURN_COLS, turn_rows)
        if consent_rows:
            await sink.write(*CONSENT_COLS, consent_rows)
        if rec_rows:
            await sink.write(*REC_COLS, rec_rows)
        if appt_rows:
            await sink.write(*APPT_COLS, appt_rows)
            await sink.write(*EVENT_COLS, event_rows)
        counts["calls"] += len(call_rows)
        counts["turns"] += len(turn_rows)
        counts["consents"] += len(consent_rows)
        counts["recordings"] += len(rec_rows)
        counts["appointments"] += len(appt_rows)
        if (base // chunk) % 10 == 9:
            el = time.perf_counter() - t0
            log(f"  {counts['calls']:,} calls, {counts['turns']:,} turns in {el:.0f} s "
                f"({counts['calls'] / el:,.0f} calls/s)")
    await sink.set_contact_times([(p.first_call or anchor, p.last_call or anchor, p.id) for p in people])
    contact_rows = []
    for i, p in enumerate(people):
        cid_ = uuid.UUID(int=rng.getrandbits(128), version=4)
        cs = str(cid_)
        email = f"{p.first}.{p.last}{i}@example.org".lower()
        contact_rows.append((cid_, tid, p.id, enc(p, p.first, "contacts", cs, "first_name"),
                             enc(p, p.last, "contacts", cs, "last_name"), enc(p, email, "contacts", cs, "email"),
                             enc(p, p.phone, "contacts", cs, "phone"),
                             enc(p, f"{rng.choice(STREETS)} {rng.randrange(1, 80)}, {rng.choice(CITIES)}",
                                 "contacts", cs, "address"), None,
                             enc(p, f"K-{10000 + i}", "contacts", cs, "customer_ref"), "call", p.last_call or anchor))
    await sink.write(*CONTACT_COLS, contact_rows)
    await sink.close()
    bulk_s = time.perf_counter() - t0
    # the DSAR subject: the one whose call count is nearest 500
    target = min(people, key=lambda q: (abs(q.calls - 500), q.id))
    blobs = 0
    for p, _rid, blob_key, ms in recent_recordings:
        if p is not target:
            continue
        writer = await vault.blobs.open_writer(blob_key, await vault.keys.blob_key(tid, p.key_id, blob_key))
        pcm = os.urandom(16 * ms)  # 8 kHz s16le mono
        for off in range(0, len(pcm), 32_000):
            await writer.write(pcm[off:off + 32_000])
        await writer.close()
        blobs += 1
    return {"tenant_id": str(tid), "tenant_slug": TENANT_SLUG, "dsar_subject_id": str(target.id),
            "dsar_subject_phone": target.phone, "dsar_subject_calls": target.calls, "dsar_subject_blobs": blobs,
            "counts": {**counts, "subjects": len(people), "contacts": len(people)}, "bulk_s": round(bulk_s, 1)}


async def check(vault: Vault, meta: dict[str, Any]) -> None:
    """Read a few rows back through the ORM and the KeyRing (storage formats and ciphertexts are right)."""
    from sqlalchemy import select

    from voicedesk.store.repos.calls import list_calls, list_turns
    from voicedesk.store.repos.subjects import get_contact, read_contact

    tid = uuid.UUID(meta["tenant_id"])
    sid = uuid.UUID(meta["dsar_subject_id"])
    async with vault.db.sessions() as s:
        rows, cursor = await list_calls(s, tid, limit=5)
        assert len(rows) == 5 and cursor is not None
        call = rows[0]
        assert await vault.keys.decrypt(tid, call.from_enc, table="calls", row_id=call.id, column="from")
        turns = await list_turns(s, tid, call.id)
        if turns:
            assert await vault.keys.decrypt(tid, turns[0].text_enc, table="turns", row_id=turns[0].id, column="text")
        contact = await get_contact(s, tid, sid)
        assert contact is not None and (await read_contact(vault.keys, contact)).phone == meta["dsar_subject_phone"]
        subject = (await s.scalars(select(Subject).where(Subject.id == sid))).one()
        assert subject.last_contact_at.tzinfo is not None


# --- cache ---------------------------------------------------------------------------------------

def bench_settings(data_dir: Path, database_url: str | None = None) -> Settings:
    key_file = data_dir / "bench-master-key"
    if not key_file.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key_file.write_text(base64.b64encode(os.urandom(32)).decode())
    extra: dict[str, Any] = {}
    if database_url:
        schema = "bench_" + data_dir.name.replace("-", "_")  # one schema per dataset (size, version)
        extra = {"database_url": database_url, "database_schema": schema, "keystore_schema": schema + "_keys"}
    return Settings(data_dir=data_dir, master_key=key_file.read_text().strip(), jobs_enabled=False,
                    _env_file=None, **extra)  # type: ignore[call-arg]


def dataset_dir(calls: int, subjects: int, turn_days: int, database_url: str | None = None) -> Path:
    tag = f"dataops-v{GEN_VERSION}-{calls}-{subjects}-{turn_days}"
    if database_url:
        tag += "-pg"
    return OUT / tag


async def ensure_dataset(calls: int, subjects: int, turn_days: int, *, database_url: str | None = None,
                         log: Callable[[str], None] = print) -> tuple[Path, dict[str, Any]]:
    """The cached dataset (generated when missing); returns its directory and ``meta.json``."""
    data_dir = dataset_dir(calls, subjects, turn_days, database_url)
    meta_path = data_dir / "meta.json"
    if meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        log(f"[dataops] reusing {data_dir.name} (generated in {meta['generation_s']} s on {meta['generated_on']})")
        return data_dir, meta
    shutil.rmtree(data_dir, ignore_errors=True)
    settings = bench_settings(data_dir, database_url)
    if database_url:
        await _drop_pg_schemas(settings)
    anchor = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    log(f"[dataops] generating {calls:,} calls over {subjects:,} subjects into {data_dir.name} …")
    t0 = time.perf_counter()
    vault = await open_vault(settings, clock=FixedClock(anchor))
    try:
        if database_url:
            meta = await generate(vault, lambda: PostgresSink(vault), calls=calls, subjects=subjects,
                                  turn_days=turn_days, anchor=anchor, log=log)
        else:
            async def release() -> None:  # the bulk connection writes alone
                await vault.db.engine.dispose()
                await vault.keystore.db.engine.dispose()

            meta = await generate(vault, lambda: SqliteSink(data_dir / "voicedesk.db", data_dir / "keys.db"),
                                  calls=calls, subjects=subjects, turn_days=turn_days, anchor=anchor, log=log,
                                  before_bulk=release)
        await check(vault, meta)
    finally:
        await vault.close()
    meta.update(generator_version=GEN_VERSION, anchor=anchor.isoformat(), turn_days=turn_days,
                generation_s=round(time.perf_counter() - t0, 1),
                generated_on=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), database_url=database_url)
    if not database_url:
        meta["db_bytes"] = (data_dir / "voicedesk.db").stat().st_size
    meta_path.write_text(json.dumps(meta, indent=1))
    log(f"[dataops] generated in {meta['generation_s']} s (bulk inserts {meta['bulk_s']} s): "
        + ", ".join(f"{k} {v:,}" for k, v in meta["counts"].items()))
    return data_dir, meta


async def _drop_pg_schemas(settings: Settings) -> None:
    from sqlalchemy import text

    from voicedesk.store.session import make_engine

    engine = make_engine(settings.db_url)
    try:
        async with engine.begin() as conn:
            for schema in (settings.database_schema, settings.keystore_schema):
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        await engine.dispose()


def main(argv: Iterable[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=1_000_000)
    p.add_argument("--subjects", type=int, default=2_000)
    p.add_argument("--turn-days", type=int, default=270)
    p.add_argument("--database-url", default=None, help="PostgreSQL URL (postgresql+asyncpg://…); default SQLite")
    p.add_argument("--force", action="store_true", help="regenerate even if cached")
    args = p.parse_args(list(argv) if argv is not None else None)
    if args.force:
        shutil.rmtree(dataset_dir(args.calls, args.subjects, args.turn_days, args.database_url), ignore_errors=True)
    asyncio.run(ensure_dataset(args.calls, args.subjects, args.turn_days, database_url=args.database_url))


if __name__ == "__main__":
    main()
