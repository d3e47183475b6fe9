"""The retention sweep on SQLite and PostgreSQL: periods, anonymisation, holds, resume, dry run."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select
from tests.support.factories import make_tenant

from voicedesk.clock import FixedClock
from voicedesk.domain.errors import ErasedError, NotFoundError
from voicedesk.domain.retention import (
    OUTCOME_CATEGORIES,
    Action,
    DataCategory,
    RetentionPolicy,
    anonymise_call_metadata,
    expiry,
)
from voicedesk.jobs.scheduler import Scheduler
from voicedesk.privacy.holds import do_add_legal_hold, do_release_legal_hold, list_legal_holds
from voicedesk.privacy.retention import (
    RETENTION_JOB,
    TenantRetention,
    anonymise_calls_statement,
    register_jobs,
    run_sweep,
    tenant_retention,
)
from voicedesk.store.models import (
    Appointment,
    AuditCheckpoint,
    AuditEntry,
    Base,
    Call,
    Consent,
    Contact,
    Message,
    Recording,
    Subject,
    SweepRun,
    Tenant,
    Turn,
)
from voicedesk.store.repos.subjects import ContactData, add_subject, upsert_contact
from voicedesk.store.vault import Vault

CALLER = "+4917123456789"
TEXT = "Guten Tag, hier ist Anna Kowalczyk, meine Nummer ist 0171 2345678."


@dataclass
class Seeded:
    call_id: uuid.UUID
    subject_id: uuid.UUID
    key_id: uuid.UUID
    blob: str | None


async def seed_call(
    vault: Vault, tenant: Tenant, *, started: dt.datetime, subject_id: uuid.UUID | None = None,
    turns: int = 2, recording: bool = True, phone: str = CALLER, contact: bool = False,
) -> Seeded:
    """A finished call with encrypted metadata, turns, a consent and (optionally) a recording."""
    async with vault.db.transaction() as s:
        if subject_id is None:
            subject = await add_subject(s, vault.keys, tenant.id, now=started, phone=phone)
        else:
            subject = await s.get_one(Subject, subject_id)
        subject.last_contact_at = max(subject.last_contact_at, started)
        if contact:
            await upsert_contact(s, vault.keys, subject, ContactData(first_name="Anna", last_name="Kowalczyk",
                                                                     phone=phone), started)
        call = Call(id=uuid.uuid4(), tenant_id=tenant.id, subject_id=subject.id, provider="twilio",
                    provider_call_id=f"CA{uuid.uuid4().hex}", direction="inbound", to_number="+4969123456780",
                    language="de", status="completed", started_at=started, answered_at=started,
                    ended_at=started + dt.timedelta(seconds=125), duration_s=125, outcome="appointment_booked",
                    recording_consent="granted")
        enc = vault.keys.encrypt
        call.from_enc = await enc(tenant.id, subject.key_id, phone, table="calls", row_id=call.id, column="from")
        call.caller_name_enc = await enc(tenant.id, subject.key_id, "Anna Kowalczyk", table="calls", row_id=call.id,
                                         column="caller_name")
        call.summary_enc = await enc(tenant.id, subject.key_id, "Termin gebucht", table="calls", row_id=call.id,
                                     column="summary")
        s.add(call)
        for i in range(turns):
            turn = Turn(id=uuid.uuid4(), tenant_id=tenant.id, call_id=call.id, seq=i,
                        speaker="caller" if i % 2 == 0 else "assistant", start_ms=i * 1000, end_ms=i * 1000 + 900,
                        created_at=started)
            turn.text_enc = await enc(tenant.id, subject.key_id, TEXT, table="turns", row_id=turn.id, column="text")
            s.add(turn)
        s.add(Consent(id=uuid.uuid4(), tenant_id=tenant.id, call_id=call.id, subject_id=subject.id,
                      purpose="recording", decision="granted", method="key", decided_at=started))
        key_id, sid = subject.key_id, subject.id
    blob = None
    if recording:
        rec_id = uuid.uuid4()
        blob = f"{tenant.id}/recordings/{call.id}/{rec_id}.pcm"
        writer = await vault.blobs.open_writer(blob, await vault.keys.blob_key(tenant.id, key_id, blob))
        await writer.write(b"\x01\x00" * 800)
        size = await writer.close()
        async with vault.db.transaction() as s:
            s.add(Recording(id=rec_id, tenant_id=tenant.id, call_id=call.id, blob_key=blob, size_bytes=size,
                            duration_ms=100, created_at=started))
    return Seeded(call.id, sid, key_id, blob)


async def count(vault: Vault, model: Any, *where: Any) -> int:
    async with vault.db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def get_call(vault: Vault, call_id: uuid.UUID) -> Call:
    async with vault.db.sessions() as s:
        return await s.get_one(Call, call_id)


async def db_state(vault: Vault, blob_root: Path) -> tuple[list[str], list[str]]:
    """Every row of every table and every blob file, as comparable text."""
    rows: list[str] = []
    async with vault.db.sessions() as s:
        for table in Base.metadata.sorted_tables:
            for r in (await s.execute(select(table))).all():
                rows.append(f"{table.name}:{r!r}")
    return sorted(rows), list_files(blob_root)


def list_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def days(n: int) -> dt.timedelta:
    return dt.timedelta(days=n)


@pytest.mark.req("R-7.1")
@pytest.mark.req("R-7.2")
async def test_default_periods_per_category(vault: Vault, clock: FixedClock) -> None:
    tenant = await make_tenant(vault)
    now = clock.now()
    fresh = await seed_call(vault, tenant, started=now - days(10))
    old_rec = await seed_call(vault, tenant, started=now - days(91))
    old_turns = await seed_call(vault, tenant, started=now - days(181))
    old_meta = await seed_call(vault, tenant, started=dt.datetime(2025, 11, 24, 23, 30, tzinfo=dt.UTC))
    gone = await seed_call(vault, tenant, started=now - days(3 * 366 + 2), contact=True)
    async with vault.db.transaction() as s:  # an appointment that goes with its person
        s.add(Appointment(id=uuid.uuid4(), tenant_id=tenant.id, subject_id=gone.subject_id, service_id="x",
                          staff_id="y", start_at=now - days(1200), end_at=now - days(1200), status="booked",
                          created_at=now - days(1200), updated_at=now - days(1200)))

    report = await run_sweep(vault)

    assert report.complete and not report.dry_run
    totals = report.totals()
    assert totals["recordings"]["deleted"] == 4
    assert totals["transcripts"]["deleted"] == 6
    assert totals["call_metadata"]["anonymised"] == 2
    assert totals["customer_data"]["deleted"] == 1
    # 10 days: untouched
    assert await vault.blobs.exists(fresh.blob or "")
    assert await count(vault, Turn, Turn.call_id == fresh.call_id) == 2
    # 91 days: recording gone (blob and row), transcript kept
    assert not await vault.blobs.exists(old_rec.blob or "")
    assert await count(vault, Recording, Recording.call_id == old_rec.call_id) == 0
    assert await count(vault, Turn, Turn.call_id == old_rec.call_id) == 2
    # 181 days: transcript gone, metadata still personal
    assert await count(vault, Turn, Turn.call_id == old_turns.call_id) == 0
    kept = await get_call(vault, old_turns.call_id)
    assert kept.from_enc is not None and kept.anonymised_at is None
    # 12 months + 1 day: anonymised (tenant zone Europe/Berlin: 23:30 UTC is the next day there)
    call = await get_call(vault, old_meta.call_id)
    assert call.anonymised_at == now
    assert (call.from_enc, call.caller_name_enc, call.summary_enc, call.subject_id) == (None, None, None, None)
    assert (call.provider_call_id, call.to_number, call.answered_at, call.ended_at) == (None, None, None, None)
    assert call.started_at == dt.datetime(2025, 11, 24, 23, 0, tzinfo=dt.UTC)  # 25 Nov 00:00 in Berlin
    assert (call.duration_s, call.status, call.outcome, call.language) == (120, "completed", "appointment_booked", "de")
    assert await count(vault, Consent, Consent.call_id == old_meta.call_id) == 0
    # customer data after 3 years: key destroyed (ledgered), rows deleted
    assert await count(vault, Subject, Subject.id == gone.subject_id) == 0
    assert await count(vault, Contact, Contact.subject_id == gone.subject_id) == 0
    assert await count(vault, Appointment, Appointment.subject_id == gone.subject_id) == 0
    assert await vault.keystore.get_data_key(gone.key_id) is None
    assert [e.subject_id for e in await vault.keystore.ledger(tenant.id)] == [gone.subject_id]
    with pytest.raises(ErasedError):
        await vault.keys.data_key(tenant.id, gone.key_id)
    # audited with counts only
    async with vault.db.sessions() as s:
        entry = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "retention.sweep"))).one()
    dumped = json.dumps(entry.details)
    assert entry.details["counts"]["customer_data"]["deleted"] == 1
    assert "Anna" not in dumped and "0171" not in dumped and CALLER not in dumped
    assert str(gone.subject_id) not in dumped

    again = await run_sweep(vault)  # idempotent: nothing left to do
    assert again.records == 0


@pytest.mark.req("R-7.1")
@pytest.mark.req("R-7.2")
async def test_no_record_outlives_its_period_by_more_than_one_interval(vault: Vault, clock: FixedClock) -> None:
    tenant = await make_tenant(vault)
    start = clock.now()
    first = await seed_call(vault, tenant, started=start, turns=1)
    for i in range(1, 12):  # a call every 10 days, the same caller
        await seed_call(vault, tenant, started=start + days(10 * i), turns=1, subject_id=first.subject_id)
    policy = RetentionPolicy()
    interval = days(7)
    for _ in range(4 * 52 + 20):
        clock.advance(interval)
        await run_sweep(vault)
        now = clock.now()
        async with vault.db.sessions() as s:
            recs = (await s.execute(select(Call.started_at).join(Recording, Recording.call_id == Call.id))).all()
            turns = (await s.execute(select(Call.started_at).join(Turn, Turn.call_id == Call.id))).all()
            personal = (await s.scalars(select(Call.started_at).where(Call.anonymised_at.is_(None)))).all()
            subjects = (await s.scalars(select(Subject.last_contact_at))).all()
        assert all(expiry(DataCategory.RECORDINGS, policy, r.started_at) > now for r in recs)
        assert all(expiry(DataCategory.TRANSCRIPTS, policy, r.started_at) > now for r in turns)
        assert all(expiry(DataCategory.CALL_METADATA, policy, t) > now for t in personal)
        assert all(expiry(DataCategory.CUSTOMER_DATA, policy, t) > now for t in subjects)
    assert await count(vault, Subject) == 0
    assert await count(vault, Call, Call.anonymised_at.is_not(None)) == 12


@pytest.mark.req("R-7.2")
@pytest.mark.req("R-4.4")
async def test_legal_holds_block_deletion_and_are_audited(vault: Vault, clock: FixedClock) -> None:
    tenant = await make_tenant(vault)
    now = clock.now()
    by_subject = await seed_call(vault, tenant, started=now - days(400))
    by_call = await seed_call(vault, tenant, started=now - days(400))
    free = await seed_call(vault, tenant, started=now - days(400))
    h1 = await do_add_legal_hold(vault, tenant.id, subject_id=by_subject.subject_id, reason="§ 147 AO", actor="test")
    h2 = await do_add_legal_hold(vault, tenant.id, call_id=by_call.call_id, reason="Rechtsstreit", actor="test")

    async with vault.db.sessions() as s:
        added = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "legal_hold.add"))).all()
    assert [e.object_id for e in added] == [str(h1.id), str(h2.id)]
    assert all("147" not in json.dumps(e.details) and "Rechtsstreit" not in json.dumps(e.details) for e in added)

    report = await run_sweep(vault)

    assert report.totals()["call_metadata"] == {"anonymised": 1, "held": 2}
    assert report.totals()["recordings"] == {"deleted": 1, "held": 2}
    for held in (by_subject, by_call):
        call = await get_call(vault, held.call_id)
        assert call.anonymised_at is None and call.from_enc is not None
        assert await vault.blobs.exists(held.blob or "")
        assert await count(vault, Turn, Turn.call_id == held.call_id) == 2
    assert (await get_call(vault, free.call_id)).anonymised_at is not None

    clock.advance(days(3 * 366))  # the customers' periods run out too; holds still apply
    await run_sweep(vault)
    assert await count(vault, Subject, Subject.id.in_([by_subject.subject_id, by_call.subject_id])) == 2
    assert await count(vault, Subject, Subject.id == free.subject_id) == 0

    await do_release_legal_hold(vault, tenant.id, h1.id, actor="test")
    await do_release_legal_hold(vault, tenant.id, h2.id, actor="test")
    assert await list_legal_holds(vault, tenant.id) == []
    await run_sweep(vault)
    assert await count(vault, Subject) == 0
    assert (await get_call(vault, by_call.call_id)).anonymised_at is not None
    assert not await vault.blobs.exists(by_subject.blob or "")
    async with vault.db.sessions() as s:
        released = (await s.scalars(select(AuditEntry.object_id).where(AuditEntry.action == "legal_hold.release")
                                    .order_by(AuditEntry.seq))).all()
    assert list(released) == [str(h1.id), str(h2.id)]


@pytest.mark.req("R-7.2")
@pytest.mark.req("R-11.3")
async def test_holds_and_sweeps_stay_within_their_tenant(vault: Vault, clock: FixedClock) -> None:
    a = await make_tenant(vault)
    b = await make_tenant(vault, slug="harbor-auto")
    now = clock.now()
    old_a = await seed_call(vault, a, started=now - days(100))
    old_b = await seed_call(vault, b, started=now - days(100))
    with pytest.raises(NotFoundError):
        await do_add_legal_hold(vault, a.id, call_id=old_b.call_id, reason="x", actor="test")
    report = await run_sweep(vault, tenant_id=a.id)
    assert [t.slug for t in report.tenants] == ["praxis-mueller"] and report.logs == {}
    assert not await vault.blobs.exists(old_a.blob or "")
    assert await vault.blobs.exists(old_b.blob or "")


@pytest.mark.req("R-7.2")
async def test_killed_sweep_resumes_without_double_work(vault: Vault, clock: FixedClock) -> None:
    tenant = await make_tenant(vault)
    now = clock.now()
    for i in range(23):
        await seed_call(vault, tenant, started=now - days(100) - dt.timedelta(minutes=i), turns=1)
    batches: list[tuple[str, int]] = []

    first = await run_sweep(vault, batch_size=5, max_batches=2)
    assert not first.complete and first.tenants[0].counts == {"recordings": {"deleted": 10}}
    assert await count(vault, Recording) == 13
    async with vault.db.sessions() as s:
        run = (await s.scalars(select(SweepRun))).one()
    assert run.finished_at is None and run.progress["recordings"]["after"]

    class CrashError(Exception):
        pass

    def crash_after_one(category: DataCategory, n: int) -> None:
        batches.append((category.value, n))
        raise CrashError

    with pytest.raises(CrashError):  # the process dies right after its first committed batch
        await run_sweep(vault, batch_size=5, on_batch=crash_after_one)
    assert await count(vault, Recording) == 8
    batches.clear()

    def note(category: DataCategory, n: int) -> None:
        batches.append((category.value, n))

    last = await run_sweep(vault, batch_size=5, on_batch=note)
    t = last.tenants[0]
    assert last.complete and t.resumed and t.run_id == run.id
    assert t.counts["recordings"] == {"deleted": 8}
    assert t.run_counts["recordings"] == {"deleted": 23}
    assert [b for b in batches if b[0] == "recordings"] == [("recordings", 1), ("recordings", 2)]
    assert await count(vault, Recording) == 0
    async with vault.db.sessions() as s:
        finished = (await s.scalars(select(SweepRun))).one()
    assert finished.finished_at is not None


@pytest.mark.req("R-7.2")
async def test_dry_run_changes_nothing_and_reports_what_would_go(
    vault: Vault, clock: FixedClock, tmp_path: Path
) -> None:
    tenant = await make_tenant(vault)
    now = clock.now()
    for age in (5, 95, 185, 370, 1200):
        await seed_call(vault, tenant, started=now - days(age))
    clock.advance(days(1))
    blob_root = Path(getattr(vault.blobs, "root"))  # noqa: B009 - FileBlobStore
    before = await db_state(vault, blob_root)

    dry = await run_sweep(vault, dry_run=True, batch_size=2)

    assert _only_audit_changed(before, await db_state(vault, blob_root))
    assert await count(vault, SweepRun) == 0
    real = await run_sweep(vault, batch_size=2)
    expected = {c: {a: n for a, n in acts.items()} for c, acts in real.totals().items() if c != "logs"}
    assert {c: a for c, a in dry.totals().items() if c != "logs"} == expected
    assert dry.records > 0


def _only_audit_changed(before: tuple[list[str], list[str]], after: tuple[list[str], list[str]]) -> bool:
    """A dry run writes exactly one audit entry (the dry run itself) and nothing else."""
    strip = [r for r in after[0] if not r.startswith("audit_log:")]
    added = [r for r in after[0] if r.startswith("audit_log:") and r not in before[0]]
    return strip == [r for r in before[0] if not r.startswith("audit_log:")] and len(added) == 1 and \
        "retention.dry_run" in added[0] and after[1] == before[1]


@pytest.mark.req("R-7.3")
async def test_transcripts_kept_for_statistics_are_redacted_and_unlinked(vault: Vault, clock: FixedClock) -> None:
    tenant = await make_tenant(vault)
    now = clock.now()
    seeded = await seed_call(vault, tenant, started=now - days(200), turns=3, contact=True)

    def keep_redacted(t: Tenant) -> TenantRetention:
        base = tenant_retention(t)
        return TenantRetention(base.policy, Action.ANONYMISE, base.timezone)

    report = await run_sweep(vault, retention_of=keep_redacted)
    assert report.totals()["transcripts"] == {"redacted": 3}
    async with vault.db.sessions() as s:
        turns = (await s.scalars(select(Turn).where(Turn.call_id == seeded.call_id).order_by(Turn.seq))).all()
    assert len(turns) == 3 and all(t.redacted_at == now and t.tool_calls_enc is None for t in turns)
    texts = [await vault.keys.decrypt(tenant.id, t.text_enc, table="turns", row_id=t.id, column="text")
             for t in turns]
    for text in texts:
        assert text is not None
        assert "Kowalczyk" not in text and "Anna" not in text and "2345678" not in text
        assert "[NAME]" in text and "[PHONE]" in text
    # the ciphertext names a key that belongs to no subject
    key_ids = {uuid.UUID(bytes=(t.text_enc or b"")[1:17]) for t in turns}
    assert seeded.key_id not in key_ids and await count(vault, Subject, Subject.key_id.in_(key_ids)) == 0

    clock.advance(days(3 * 366 + 200))  # metadata anonymised, the person erased: statistics survive
    await run_sweep(vault, retention_of=keep_redacted)
    assert await count(vault, Subject) == 0
    again = [await vault.keys.decrypt(tenant.id, t.text_enc, table="turns", row_id=t.id, column="text")
             for t in turns]
    assert again == texts
    call = await get_call(vault, seeded.call_id)
    assert call.subject_id is None and call.anonymised_at is not None


@pytest.mark.req("R-7.1")
@pytest.mark.req("R-7.2")
async def test_logs_are_cut_behind_a_signed_checkpoint(vault: Vault, clock: FixedClock) -> None:
    await make_tenant(vault)
    for i in range(5):
        await vault.audit.record(actor="test", action="call.read", object_type="call", object_id=f"c{i}")
    clock.advance(days(91))
    await vault.audit.record(actor="test", action="call.read", object_type="call", object_id="recent")
    report = await run_sweep(vault)
    assert report.logs == {"deleted": 6}  # tenant.create and the 5 reads
    assert await count(vault, AuditCheckpoint) == 1
    async with vault.db.sessions() as s:
        oldest = await s.scalar(select(func.min(AuditEntry.at)))
    assert oldest is not None and oldest >= clock.now() - days(90)
    verified = await vault.audit.verify()
    assert verified.ok, verified.problems


@pytest.mark.req("R-7.2")
async def test_the_scheduler_runs_the_sweep(vault: Vault, clock: FixedClock) -> None:
    tenant = await make_tenant(vault)
    old = await seed_call(vault, tenant, started=clock.now() - days(100))
    scheduler = Scheduler()
    register_jobs(scheduler, vault, interval_s=60)
    assert scheduler.jobs[RETENTION_JOB].interval_s == 60
    assert await scheduler.run_once(RETENTION_JOB)
    assert scheduler.jobs[RETENTION_JOB].failures == 0
    assert not await vault.blobs.exists(old.blob or "")


@pytest.mark.req("R-7.3")
async def test_set_based_anonymisation_follows_the_domain_rule(vault: Vault, clock: FixedClock) -> None:
    tenant = await make_tenant(vault)
    now = clock.now()
    outcomes = [*sorted(OUTCOME_CATEGORIES), None, "Frau Kowalczyk ruft zurück"]
    rows: list[dict[str, Any]] = [
        {"id": uuid.uuid4(), "tenant_id": tenant.id, "provider": "twilio", "direction": "inbound", "language": "de",
         "status": "completed", "started_at": now, "duration_s": d, "outcome": outcomes[d % len(outcomes)]}
        for d in range(3601)
    ]
    async with vault.db.transaction() as s:
        await s.execute(insert(Call), rows)
        await s.execute(anonymise_calls_statement(Call.tenant_id == tenant.id, now, now))
    async with vault.db.sessions() as s:
        got = {c.id: (c.duration_s, c.outcome) for c in (await s.scalars(select(Call))).all()}
    for row in rows:
        want = anonymise_call_metadata({**row, "duration_seconds": row["duration_s"],
                                        "outcome_category": row["outcome"]})
        assert got[row["id"]] == (want["duration_seconds"], want["outcome_category"]), row["duration_s"]


@pytest.mark.req("R-7.2")
@pytest.mark.req("R-7.3")
async def test_sweep_across_batch_boundaries_reaches_every_expired_call(vault: Vault, clock: FixedClock) -> None:
    """Batches chosen by key range (SQLite) or id array (PostgreSQL) miss nothing and touch nothing else.

    Calls spread over several days (in the tenant's zone, around midnight), with equal start
    times across a batch boundary, a held call in the middle and recent calls after them.
    """
    tenant = await make_tenant(vault)
    now = clock.now()
    base = (now - days(400)).replace(hour=22, minute=30, second=0, microsecond=0)  # 23:30 / 00:30 Berlin
    starts = [base + dt.timedelta(hours=h) for h in (0, 0, 0, 1, 1, 2, 24, 25, 49, 49)]
    seeded = [await seed_call(vault, tenant, started=t, turns=2) for t in starts]
    recent = [await seed_call(vault, tenant, started=now - days(d), turns=2) for d in (100, 5)]
    held = seeded[4]
    await do_add_legal_hold(vault, tenant.id, call_id=held.call_id, reason="Rechtsstreit", actor="test")
    async with vault.db.transaction() as s:
        for i, target in enumerate((seeded[0], recent[0])):
            s.add(Appointment(id=uuid.uuid4(), tenant_id=tenant.id, subject_id=target.subject_id,
                              call_id=target.call_id, service_id="s", staff_id="a", start_at=now + days(i + 1),
                              end_at=now + days(i + 1), status="booked", created_at=now, updated_at=now))

    report = await run_sweep(vault, batch_size=3)

    totals = report.totals()
    assert totals["call_metadata"] == {"anonymised": 9, "held": 1}
    assert totals["transcripts"] == {"deleted": 18, "held": 1}
    berlin = ZoneInfo("Europe/Berlin")
    for s_, started in zip(seeded, starts, strict=True):
        call = await get_call(vault, s_.call_id)
        if s_ is held:
            assert call.anonymised_at is None and call.started_at == started
            assert await count(vault, Turn, Turn.call_id == s_.call_id) == 2
            assert await vault.blobs.exists(s_.blob or "")
            continue
        day = started.astimezone(berlin).date()
        assert call.anonymised_at is not None and call.subject_id is None and call.from_enc is None
        assert call.started_at == dt.datetime.combine(day, dt.time(), tzinfo=berlin).astimezone(dt.UTC)
        assert await count(vault, Turn, Turn.call_id == s_.call_id) == 0
        assert await count(vault, Recording, Recording.call_id == s_.call_id) == 0
        assert await count(vault, Consent, Consent.call_id == s_.call_id) == 0
        assert not await vault.blobs.exists(s_.blob or "")
    for r in recent:
        assert (await get_call(vault, r.call_id)).anonymised_at is None
        assert await count(vault, Turn, Turn.call_id == r.call_id) == 2
    assert not await vault.blobs.exists(recent[0].blob or "")  # 100 days: the recording's period only
    assert await vault.blobs.exists(recent[1].blob or "")
    async with vault.db.sessions() as s:
        links = dict((await s.execute(select(Appointment.start_at, Appointment.call_id)
                                      .order_by(Appointment.start_at))).all())
    assert list(links.values()) == [None, recent[0].call_id]
    again = await run_sweep(vault, batch_size=3)
    assert again.records == 0


@pytest.mark.req("R-7.2")
@pytest.mark.req("R-7.3")
async def test_walks_after_anonymisation_skip_its_range_but_count_its_holds(vault: Vault, clock: FixedClock) -> None:
    """Recordings and transcripts walks start where the metadata walk left every call anonymised or held.

    Call metadata here expires (1 month) before recordings and transcripts (365 days), so
    the skipped range reaches past their whole window: what is expired there still goes
    (with the anonymised call), held calls are still counted per category, and a held call
    whose recording period has not run out is not counted for it. Appointments and
    messages lose their link to a call in the batch that anonymises it.
    """
    tenant = await make_tenant(vault)
    now = clock.now()
    policy = RetentionPolicy(recordings_days=365, transcripts_days=365, call_metadata_months=1)
    old_held = await seed_call(vault, tenant, started=now - days(400))
    young_held = await seed_call(vault, tenant, started=now - days(100))
    free = [await seed_call(vault, tenant, started=now - days(d)) for d in (400, 100, 45)]
    recent = await seed_call(vault, tenant, started=now - days(5))
    for h in (old_held, young_held):
        await do_add_legal_hold(vault, tenant.id, call_id=h.call_id, reason="Rechtsstreit", actor="test")
    async with vault.db.transaction() as s:
        for target in (free[1], recent):
            s.add(Appointment(id=uuid.uuid4(), tenant_id=tenant.id, subject_id=target.subject_id,
                              call_id=target.call_id, service_id="s", staff_id="a", start_at=now, end_at=now,
                              status="booked", created_at=now, updated_at=now))
            s.add(Message(id=uuid.uuid4(), tenant_id=tenant.id, subject_id=target.subject_id,
                          call_id=target.call_id, created_at=now))

    def retention_of(_: Tenant) -> TenantRetention:
        return TenantRetention(policy)

    dry = await run_sweep(vault, dry_run=True, batch_size=2, retention_of=retention_of)
    report = await run_sweep(vault, batch_size=2, retention_of=retention_of)

    totals = {c: a for c, a in report.totals().items() if c != "logs"}
    assert totals["call_metadata"] == {"anonymised": 3, "held": 2}
    assert totals["recordings"] == {"deleted": 3, "held": 1}
    assert totals["transcripts"] == {"deleted": 6, "held": 1}
    assert {c: a for c, a in dry.totals().items() if c != "logs"} == totals
    for f in free:
        assert (await get_call(vault, f.call_id)).anonymised_at is not None
        assert await count(vault, Recording, Recording.call_id == f.call_id) == 0
    for kept in (old_held, young_held, recent):
        assert (await get_call(vault, kept.call_id)).anonymised_at is None
        assert await count(vault, Recording, Recording.call_id == kept.call_id) == 1
        assert await count(vault, Turn, Turn.call_id == kept.call_id) == 2
    for model in (Appointment, Message):
        assert await count(vault, model, model.call_id == free[1].call_id) == 0
        assert await count(vault, model, model.call_id == recent.call_id) == 1
    again = await run_sweep(vault, batch_size=2, retention_of=retention_of)
    assert again.records == 0


@pytest.mark.req("R-7.3")
async def test_resumed_run_unlinks_calls_anonymised_before_links_went_per_batch(
    vault: Vault, clock: FixedClock
) -> None:
    """A run interrupted under the old code (links dropped at the end) leaves no link behind once resumed."""
    tenant = await make_tenant(vault)
    now = clock.now()
    done = await seed_call(vault, tenant, started=now - days(400), recording=False, turns=0)
    async with vault.db.transaction() as s:
        await s.execute(anonymise_calls_statement(Call.id == done.call_id, now - days(400), now))
        s.add(Appointment(id=uuid.uuid4(), tenant_id=tenant.id, subject_id=done.subject_id, call_id=done.call_id,
                          service_id="s", staff_id="a", start_at=now, end_at=now, status="booked", created_at=now,
                          updated_at=now))
        s.add(Message(id=uuid.uuid4(), tenant_id=tenant.id, subject_id=done.subject_id, call_id=done.call_id,
                      created_at=now))
        s.add(SweepRun(id=uuid.uuid4(), tenant_id=tenant.id, started_at=now, cutoff_at=now, progress={}))

    report = await run_sweep(vault)

    assert report.tenants[0].resumed and report.complete
    for model in (Appointment, Message):
        assert await count(vault, model, model.call_id.is_not(None)) == 0
