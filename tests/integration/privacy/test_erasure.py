"""Erasure on request (R-8.3): three people across every table and the blob store, one erased.

Afterwards nothing of that person is left — not in any table (checked by SELECTs on both
backends), not in the SQLite files' bytes (rows, free pages, WAL), not in the blob folder,
not in the captured logs — their key is destroyed and on the ledger, and the two others are
unchanged and readable. A legal hold refuses the erasure and leaves everything in place.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.integration.privacy.dsar_seed import ALICE, BORIS, CARLA, Seeded, seed_person, thursday
from tests.support.factories import make_tenant

from voicedesk.config import Settings
from voicedesk.domain.errors import ConflictError, ErasedError, LegalHoldError
from voicedesk.privacy import dsar
from voicedesk.privacy.erasure import do_erase
from voicedesk.store.keystore import DataKey
from voicedesk.store.models import (
    AuditEntry,
    Base,
    Call,
    Contact,
    DsarRequest,
    LegalHold,
    Message,
    OutboxMessage,
    Recording,
    Subject,
    Turn,
)
from voicedesk.store.repos import subjects as subject_repo
from voicedesk.store.vault import Vault

STAFF = "cli:frau-berger"


async def _erasure_request(vault: Vault, phone: str) -> uuid.UUID:
    view = await dsar.do_create_request(vault, "praxis-mueller", "erasure", phone=phone, actor=STAFF)
    await dsar.do_confirm_by_staff(vault, view.id, actor=STAFF)
    return view.id


async def _ciphertexts(vault: Vault, seeded: Seeded) -> list[bytes]:
    """Some of the person's stored ciphertexts and index values, to look for after the erasure."""
    async with vault.db.sessions() as s:
        contact = (await s.scalars(select(Contact).where(Contact.subject_id == seeded.subject_id))).one()
        call = await s.get(Call, seeded.call_id)
        turn = (await s.scalars(select(Turn).where(Turn.call_id == seeded.call_id).order_by(Turn.seq))).all()[1]
        message = await s.get(Message, uuid.UUID(seeded.message_id))
        subject = await s.get(Subject, seeded.subject_id)
    assert call is not None and message is not None and subject is not None
    values = [contact.first_name_enc, contact.email_enc, call.from_enc, call.summary_enc, turn.text_enc,
              message.reason_enc]
    out = [v for v in values if v is not None]
    out += [(subject.phone_idx or "").encode(), (subject.email_idx or "").encode()]
    return out


async def _wrapped_dek(vault: Vault, key_id: uuid.UUID) -> bytes | None:
    async with vault.keystore.db.sessions() as s:
        row = await s.get(DataKey, key_id)
    return row.wrapped if row else None


async def _all_rows(vault: Vault) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    async with vault.db.sessions() as s:
        for table in Base.metadata.sorted_tables:
            rows = (await s.execute(select(table))).mappings().all()
            out[table.name] = [dict(r) for r in rows]
    return out


def _render(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def _files(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in root.rglob("*") if p.is_file()]


async def _blob_names(vault: Vault, call_id: uuid.UUID) -> list[str]:
    async with vault.db.sessions() as s:
        return list((await s.scalars(select(Recording.blob_key).where(Recording.call_id == call_id))).all())


async def _counts(vault: Vault, seeded: Seeded) -> tuple[int, ...]:
    async with vault.db.sessions() as s:
        turns = await s.scalar(select(func.count()).select_from(Turn).where(Turn.call_id == seeded.call_id))
        recs = await s.scalar(select(func.count()).select_from(Recording).where(Recording.call_id == seeded.call_id))
        outbox = await s.scalar(select(func.count()).select_from(OutboxMessage)
                                .where(OutboxMessage.subject_id == seeded.subject_id))
    return (int(turns or 0), int(recs or 0), int(outbox or 0))


@pytest.mark.req("R-8.3")
@pytest.mark.req("R-11.1")
async def test_erasure_leaves_nothing_of_the_person_anywhere(
    vault: Vault, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # voicedesk's own loggers at DEBUG, libraries at INFO (aiosqlite's DEBUG log echoes every SQL parameter).
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="voicedesk")
    tenant = await make_tenant(vault)
    alice = await seed_person(vault, tenant, ALICE, slot=thursday(9), freq=440)
    boris = await seed_person(vault, tenant, BORIS, slot=thursday(9, 30), freq=550)
    carla = await seed_person(vault, tenant, CARLA, slot=thursday(10), freq=660)
    async with vault.db.transaction() as s:  # a released hold whose free-text reason names the person
        s.add(LegalHold(id=uuid.uuid4(), tenant_id=tenant.id, subject_id=alice.subject_id, created_at=vault.clock.now(),
                        reason=f"Steuerprüfung {ALICE.last}", released_at=vault.clock.now()))
    secrets = await _ciphertexts(vault, alice)
    dek = await _wrapped_dek(vault, alice.key_id)
    assert dek is not None
    secrets.append(dek)
    alice_blobs = await _blob_names(vault, alice.call_id)
    assert len(alice_blobs) == 2 and all([await vault.blobs.exists(b) for b in alice_blobs])
    before = {p.person.first: await _counts(vault, p) for p in (boris, carla)}

    request_id = await _erasure_request(vault, ALICE.phone)
    report = await do_erase(vault, request_id, actor=STAFF)
    assert report.blobs_deleted == 2
    assert report.counts["calls"] == 1 and report.counts["turns"] == 3 and report.counts["recordings"] == 2
    assert report.counts["subjects"] == 1 and report.counts["outbox"] == 1 and report.counts["legal_holds"] == 1
    assert report.counts["appointments"] == 1 and report.counts["slot_locks"] >= 1

    # Every table, by SELECT (the PostgreSQL check; on SQLite too).
    rows = await _all_rows(vault)
    subject_hex = (str(alice.subject_id), alice.subject_id.hex)
    for table, records in rows.items():
        for record in records:
            for column, value in record.items():
                raw = _render(value)
                for needle in ALICE.identifiers:
                    assert needle.encode() not in raw, f"{table}.{column} still holds an identifier"
                for secret in secrets:
                    assert secret not in raw, f"{table}.{column} still holds the person's ciphertext"
                if table != "audit_log":  # the audit log names the pseudonymous id of what was erased
                    assert not any(h.encode() in raw for h in subject_hex), f"{table}.{column} links the person"
    kept = next(r for r in rows["dsar_requests"] if r["id"] == request_id)
    assert (kept["state"], kept["subject_id"], kept["details_enc"]) == ("completed", None, None)
    assert all(r["details_enc"] is None for r in rows["dsar_requests"] if r["id"] == uuid.UUID(alice.dsar_id))

    # The key is gone and on the ledger; old ciphertext can never be read again.
    assert await _wrapped_dek(vault, alice.key_id) is None
    ledger = await vault.keystore.ledger(tenant.id)
    assert [(e.subject_id, e.key_id, e.request_id) for e in ledger] == [
        (alice.subject_id, alice.key_id, str(request_id))]
    with pytest.raises(ErasedError):
        await vault.keys.decrypt(tenant.id, secrets[0], table="contacts", row_id=uuid.uuid4(), column="first_name")

    # Bytes on disk: the SQLite files (after the checkpoint) and the blob folder.
    if vault.db.is_sqlite:
        data_dir = settings.data_dir
        # The WAL was truncated by the erasure; what is in it now was written afterwards (audit entries).
        for path in (data_dir / "voicedesk.db", data_dir / "voicedesk.db-wal", data_dir / "keys.db",
                     data_dir / "keys.db-wal"):
            if path.exists():
                raw = path.read_bytes()
                for needle in ALICE.identifiers:
                    assert needle.encode() not in raw, f"{path.name} holds an identifier"
                for secret in secrets:
                    assert secret not in raw, f"{path.name} still holds the person's ciphertext or key"
    blob_root: Path = settings.blob_dir
    for name in alice_blobs:
        assert not await vault.blobs.exists(name)
    for path, content in _files(blob_root):
        assert not any(n.encode() in content for n in ALICE.identifiers)
        assert str(alice.call_id) not in str(path)

    # Logs of the whole run: seeding, export of nothing, erasure.
    for needle in ALICE.identifiers:
        assert needle not in caplog.text

    # The other two are unchanged and readable.
    for seeded in (boris, carla):
        assert await _counts(vault, seeded) == before[seeded.person.first]
        async with vault.db.sessions() as s:
            contact = await subject_repo.get_contact(s, tenant.id, seeded.subject_id)
            assert contact is not None
            contact_data = await subject_repo.read_contact(vault.keys, contact)
        person = seeded.person
        assert (contact_data.first_name, contact_data.phone, contact_data.email) == (
            person.first, person.phone, person.email)
        for name in await _blob_names(vault, seeded.call_id):
            assert await vault.blobs.exists(name)
    async with vault.db.sessions() as s:
        audit = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "dsar.erase"))).one()
    assert audit.details["blobs"] == 2 and audit.details["rows"]["calls"] == 1
    assert (await vault.audit.verify()).ok


@pytest.mark.req("R-8.3")
@pytest.mark.req("R-4.4")
async def test_a_legal_hold_refuses_the_erasure_and_keeps_everything(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    alice = await seed_person(vault, tenant, ALICE, slot=thursday(9))
    async with vault.db.transaction() as s:
        s.add(LegalHold(id=uuid.uuid4(), tenant_id=tenant.id, call_id=alice.call_id, created_at=vault.clock.now(),
                        reason="§ 147 AO"))
    request_id = await _erasure_request(vault, ALICE.phone)
    with pytest.raises(LegalHoldError) as err:
        await do_erase(vault, request_id, actor=STAFF)
    assert "legal hold" in err.value.msg
    async with vault.db.sessions() as s:
        row = await s.get(DsarRequest, request_id)
        subject = await s.get(Subject, alice.subject_id)
        calls = await s.scalar(select(func.count()).select_from(Call).where(Call.subject_id == alice.subject_id))
        audit = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "dsar.erase_refused"))).one()
    assert row is not None and row.state == "refused" and "legal hold" in (row.refusal_reason or "")
    assert subject is not None and calls == 1
    assert await _wrapped_dek(vault, alice.key_id) is not None and await vault.keystore.ledger() == []
    assert audit.reason == "legal_hold" and audit.details == {"holds": 1}
    with pytest.raises(ConflictError):
        await do_erase(vault, request_id, actor=STAFF)


@pytest.mark.req("R-8.3")
@pytest.mark.req("R-8.7")
async def test_an_erasure_said_during_a_call_is_carried_out_after_staff_verification(
    vault: Vault, clock: Any
) -> None:
    tenant = await make_tenant(vault)
    alice = await seed_person(vault, tenant, ALICE, slot=thursday(9))
    tools_request = await dsar.do_create_request(vault, "praxis-mueller", "erasure", phone=ALICE.phone,
                                                 channel="call", actor="call:x")
    with pytest.raises(ConflictError):
        await do_erase(vault, tools_request.id, actor=STAFF)
    await dsar.do_confirm_by_staff(vault, tools_request.id, actor=STAFF)
    clock.advance(dt.timedelta(days=3))
    await do_erase(vault, tools_request.id, actor=STAFF)
    views = await dsar.list_requests(vault, actor=STAFF, tenant_slug="praxis-mueller")
    assert {v.id: (v.state, v.subject_erased) for v in views} == {
        uuid.UUID(alice.dsar_id): ("received", True), tools_request.id: ("completed", True)}
    await dsar.do_create_request(vault, "praxis-mueller", "access", phone=ALICE.phone, actor=STAFF)
    async with vault.db.sessions() as s:
        fresh = (await s.scalars(select(Subject).where(Subject.tenant_id == tenant.id))).all()
    assert [x.id for x in fresh] != [alice.subject_id] and len(fresh) == 1, "a new request starts a new subject"
