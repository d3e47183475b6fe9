"""R-10.1: no plaintext personal data at rest; ciphertext is bound to its row."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, update
from tests.support.factories import make_tenant

from voicedesk.domain.errors import ErasedError, IntegrityError
from voicedesk.store.models import Base, Call, Contact, Subject, Turn
from voicedesk.store.repos.subjects import (
    ContactData,
    add_subject,
    find_subject_by_phone,
    read_contact,
    upsert_contact,
)
from voicedesk.store.vault import Vault

NAME = "Zacharias Quellenberger"
PHONE = "+4917612345678"
TRANSCRIPT = "Ich heiße Zacharias Quellenberger und brauche einen Termin wegen Rückenschmerzen"


async def _seed(vault: Vault) -> tuple[uuid.UUID, uuid.UUID]:
    tenant = await make_tenant(vault)
    now = vault.clock.now()
    async with vault.db.transaction() as s:
        subject = await add_subject(s, vault.keys, tenant.id, now=now, phone=PHONE)
        await upsert_contact(s, vault.keys, subject, ContactData(first_name="Zacharias", last_name="Quellenberger",
                                                                 phone=PHONE), now)
        call = Call(id=uuid.uuid4(), tenant_id=tenant.id, subject_id=subject.id, language="de", status="completed",
                    started_at=now, provider_call_id="CA" + "1" * 32)
        call.from_enc = await vault.keys.encrypt(tenant.id, subject.key_id, PHONE, table="calls", row_id=call.id,
                                                 column="from")
        s.add(call)
        await s.flush()
        for seq in range(2):
            turn = Turn(id=uuid.uuid4(), tenant_id=tenant.id, call_id=call.id, seq=seq, speaker="caller",
                        start_ms=0, end_ms=1000, created_at=now)
            turn.text_enc = await vault.keys.encrypt(tenant.id, subject.key_id, TRANSCRIPT, table="turns",
                                                     row_id=turn.id, column="text")
            s.add(turn)
    key = await vault.keys.blob_key(tenant.id, subject.key_id, "rec-1")
    writer = await vault.blobs.open_writer(f"{tenant.id}/rec-1.pcm", key)
    await writer.write(TRANSCRIPT.encode() * 5000)
    await writer.close()
    return tenant.id, subject.id


def _all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


@pytest.mark.req("R-10.1")
async def test_no_plaintext_in_database_blobs_or_logs(vault: Vault, backend: str, capsys: pytest.CaptureFixture[str],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    await _seed(vault)
    if vault.db.is_sqlite:
        async with vault.db.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    stored = _all_bytes(vault.blobs.root) if hasattr(vault.blobs, "root") else b""
    if backend == "sqlite":
        stored += _all_bytes(Path(str(vault.db.engine.url.database)).parent)
    else:
        async with vault.db.sessions() as s:
            for table in ("contacts", "turns", "calls", "subjects"):
                rows = (await s.execute(select(*Base.metadata.tables[table].columns))).all()
                stored += repr(rows).encode()
    out = capsys.readouterr()
    logs = (out.out + out.err + caplog.text).encode()
    for secret in (NAME, "Quellenberger", PHONE, PHONE[3:], "Rückenschmerzen", "Zacharias"):
        for encoding in ("utf-8", "utf-16-le"):
            assert secret.encode(encoding) not in stored, secret
        assert secret.encode() not in logs


@pytest.mark.req("R-10.1")
async def test_ciphertext_copied_into_another_row_fails(vault: Vault) -> None:
    tenant_id, _ = await _seed(vault)
    async with vault.db.transaction() as s:
        turns = list((await s.scalars(select(Turn).order_by(Turn.seq))).all())
        assert await vault.keys.decrypt(tenant_id, turns[0].text_enc, table="turns", row_id=turns[0].id,
                                        column="text") == TRANSCRIPT
        await s.execute(update(Turn).where(Turn.id == turns[1].id).values(text_enc=turns[0].text_enc))
    async with vault.db.sessions() as s:
        moved = (await s.scalars(select(Turn).where(Turn.id == turns[1].id))).one()
        with pytest.raises(IntegrityError):
            await vault.keys.decrypt(tenant_id, moved.text_enc, table="turns", row_id=moved.id, column="text")
        contact = (await s.scalars(select(Contact))).one()
        with pytest.raises(IntegrityError):  # same row, other column
            await vault.keys.decrypt(tenant_id, contact.first_name_enc, table="contacts", row_id=contact.id,
                                     column="last_name")


@pytest.mark.req("R-10.1")
async def test_blind_index_finds_subject_by_any_phone_format(vault: Vault) -> None:
    tenant_id, subject_id = await _seed(vault)
    async with vault.db.sessions() as s:
        for variant in (PHONE, "0176 12345678", "+49 (176) 123-456-78"):
            found = await find_subject_by_phone(s, vault.keys, tenant_id, variant)
            assert found is not None and found.id == subject_id
        contact = (await s.scalars(select(Contact))).one()
        assert (await read_contact(vault.keys, contact)).display_name == NAME


@pytest.mark.req("R-8.3")
async def test_shredding_the_data_key_makes_the_subject_unreadable(vault: Vault) -> None:
    tenant_id, subject_id = await _seed(vault)
    async with vault.db.sessions() as s:
        contact = (await s.scalars(select(Contact))).one()
        subject_key = (await s.scalars(select(Subject))).one().key_id
    await vault.keys.shred(tenant_id, subject_id, subject_key, vault.clock.now() + dt.timedelta(seconds=1))
    vault.keys.forget_cached(subject_key)
    with pytest.raises(ErasedError):
        await read_contact(vault.keys, contact)
    ledger = await vault.keystore.ledger(tenant_id)
    assert [e.subject_id for e in ledger] == [subject_id]
