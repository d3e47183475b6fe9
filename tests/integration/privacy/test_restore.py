"""Erasure that survives backups (R-8.3): snapshot the data (database + blob folder, never the
key store), erase, restore the snapshot, open the store again and replay the erasure ledger.

On SQLite the snapshot is a copy of the database file and the blob folder; on PostgreSQL it
is a logical dump of every data table (the key store lives in its own schema and is left
alone, as a real data backup would leave it).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select
from tests.integration.privacy.dsar_seed import ALICE, BORIS, seed_person, thursday
from tests.support.factories import make_tenant

from voicedesk.bootstrap import open_vault
from voicedesk.clock import FixedClock
from voicedesk.config import Settings
from voicedesk.domain.errors import ErasedError
from voicedesk.privacy import dsar
from voicedesk.privacy.erasure import do_erase
from voicedesk.privacy.restore import replay_erasure_ledger
from voicedesk.store.models import AuditEntry, Base, Call, Contact, DsarRequest, Recording, Subject, Turn
from voicedesk.store.repos import subjects as subject_repo
from voicedesk.store.vault import Vault

STAFF = "cli:frau-berger"
Snapshot = dict[str, list[dict[str, Any]]]


def _copy_files(settings: Settings, target: Path) -> None:
    target.mkdir()
    shutil.copy2(settings.data_dir / "voicedesk.db", target / "voicedesk.db")
    shutil.copytree(settings.blob_dir, target / "blobs")


def _restore_files(settings: Settings, source: Path) -> None:
    for suffix in ("-wal", "-shm"):
        (settings.data_dir / f"voicedesk.db{suffix}").unlink(missing_ok=True)
    shutil.copy2(source / "voicedesk.db", settings.data_dir / "voicedesk.db")
    shutil.rmtree(settings.blob_dir)
    shutil.copytree(source / "blobs", settings.blob_dir)


async def _dump(vault: Vault) -> Snapshot:
    async with vault.db.sessions() as s:
        return {t.name: [dict(r) for r in (await s.execute(select(t))).mappings().all()]
                for t in Base.metadata.sorted_tables}


async def _load(vault: Vault, snapshot: Snapshot) -> None:
    async with vault.db.transaction() as s:
        for table in reversed(Base.metadata.sorted_tables):
            await s.execute(delete(table))
        for table in Base.metadata.sorted_tables:
            if snapshot[table.name]:
                await s.execute(insert(table), snapshot[table.name])


async def _decrypt_contact(vault: Vault, tenant_id: uuid.UUID, subject_id: uuid.UUID) -> str | None:
    async with vault.db.sessions() as s:
        contact = await subject_repo.get_contact(s, tenant_id, subject_id)
        assert contact is not None
        return (await subject_repo.read_contact(vault.keys, contact)).last_name


async def _count(vault: Vault, model: Any, *where: Any) -> int:
    async with vault.db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.mark.req("R-8.3")
async def test_a_restored_backup_never_brings_an_erased_person_back(
    vault: Vault, settings: Settings, clock: FixedClock, tmp_path: Path
) -> None:
    tenant = await make_tenant(vault)
    alice = await seed_person(vault, tenant, ALICE, slot=thursday(9), freq=440)
    boris = await seed_person(vault, tenant, BORIS, slot=thursday(9, 30), freq=550)
    request = await dsar.do_create_request(vault, "praxis-mueller", "erasure", phone=ALICE.phone, actor=STAFF)
    await dsar.do_confirm_by_staff(vault, request.id, actor=STAFF)
    async with vault.db.sessions() as s:
        alice_blobs = list((await s.scalars(select(Recording.blob_key).where(
            Recording.call_id == alice.call_id))).all())

    # The backup, taken while the request was in progress.
    sqlite = vault.db.is_sqlite
    backup = tmp_path / "backup"
    snapshot: Snapshot = {}
    if sqlite:
        await vault.close()
        _copy_files(settings, backup)
        vault = await open_vault(settings, clock=clock)
    else:
        snapshot = await _dump(vault)
        shutil.copytree(settings.blob_dir, backup / "blobs")

    await do_erase(vault, request.id, actor=STAFF)
    assert await _count(vault, Subject, Subject.id == alice.subject_id) == 0

    # Disaster: the old backup comes back (the key store does not: it is never in a data backup).
    if sqlite:
        await vault.close()
        _restore_files(settings, backup)
    else:
        await _load(vault, snapshot)
        shutil.rmtree(settings.blob_dir)
        shutil.copytree(backup / "blobs", settings.blob_dir)
        await vault.close()
    restored = await open_vault(settings, clock=clock, replay_ledger=False)  # look before the replay
    try:
        assert await _count(restored, Subject, Subject.id == alice.subject_id) == 1, "the backup holds her again"
        with pytest.raises(ErasedError):
            await _decrypt_contact(restored, tenant.id, alice.subject_id)
        assert all([await restored.blobs.exists(b) for b in alice_blobs])

        report = await replay_erasure_ledger(restored)
        assert report.entries == 1 and report.subjects_purged == [alice.subject_id]
        assert report.requests_closed == 1 and report.blobs_deleted == 2
        assert report.counts["calls"] == 1 and report.counts["contacts"] == 1

        for model, where in ((Subject, Subject.id == alice.subject_id), (Contact, Contact.subject_id ==
                             alice.subject_id), (Call, Call.id == alice.call_id), (Turn, Turn.call_id ==
                             alice.call_id), (Recording, Recording.call_id == alice.call_id)):
            assert await _count(restored, model, where) == 0, model.__name__
        assert not any([await restored.blobs.exists(b) for b in alice_blobs])
        async with restored.db.sessions() as s:
            row = await s.get(DsarRequest, request.id)
        assert row is not None and (row.state, row.subject_id, row.details_enc) == ("completed", None, None)
        assert await _decrypt_contact(restored, tenant.id, boris.subject_id) == BORIS.last

        again = await replay_erasure_ledger(restored)
        assert not again.changed and again.entries == 1
        assert await _count(restored, AuditEntry, AuditEntry.action == "erasure.replay") == 1
    finally:
        await restored.close()
    if sqlite:  # the normal way in: opening the store replays the ledger by itself
        _restore_files(settings, backup)
        reopened = await open_vault(settings, clock=clock)
        try:
            assert await _count(reopened, Subject, Subject.id == alice.subject_id) == 0
        finally:
            await reopened.close()
