"""R-10.2: the access log is append-only and tamper-evident."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, select, update

from voicedesk.clock import FixedClock
from voicedesk.store.models import AuditEntry
from voicedesk.store.vault import Vault


async def _fill(vault: Vault, n: int = 6) -> None:
    for i in range(n):
        await vault.audit.record(actor="test", action="call.read", object_type="call", object_id=f"c{i}")


@pytest.mark.req("R-10.2")
async def test_intact_chain_verifies(vault: Vault) -> None:
    await _fill(vault)
    report = await vault.audit.verify()
    assert report.ok and report.checked == 6


@pytest.mark.req("R-10.2")
async def test_flipped_byte_is_detected(vault: Vault) -> None:
    await _fill(vault)
    async with vault.db.transaction() as s:
        await s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(object_id="c9"))
    report = await vault.audit.verify()
    assert not report.ok
    assert any("entry 3" in p and "altered" in p for p in report.problems)


@pytest.mark.req("R-10.2")
async def test_deleted_entry_is_detected(vault: Vault) -> None:
    await _fill(vault)
    async with vault.db.transaction() as s:
        await s.execute(delete(AuditEntry).where(AuditEntry.seq == 4))
    report = await vault.audit.verify()
    assert not report.ok
    assert any("entry 5" in p for p in report.problems)


@pytest.mark.req("R-10.2")
async def test_swapped_entries_are_detected(vault: Vault) -> None:
    await _fill(vault)
    async with vault.db.transaction() as s:
        a, b = (await s.scalars(select(AuditEntry).where(AuditEntry.seq.in_([2, 3])).order_by(AuditEntry.seq))).all()
        fields = ("object_id", "hash")
        va, vb = [getattr(a, f) for f in fields], [getattr(b, f) for f in fields]
        for f, x, y in zip(fields, va, vb, strict=True):
            setattr(a, f, y)
            setattr(b, f, x)
    report = await vault.audit.verify()
    assert not report.ok


@pytest.mark.req("R-10.2")
async def test_truncated_tail_is_detected(vault: Vault) -> None:
    await _fill(vault)
    async with vault.db.transaction() as s:
        await s.execute(delete(AuditEntry).where(AuditEntry.seq >= 5))
    report = await vault.audit.verify()
    assert not report.ok
    assert any("truncated" in p for p in report.problems)


@pytest.mark.req("R-7.2")
async def test_retention_cut_keeps_the_chain_verifiable(vault: Vault, clock: FixedClock) -> None:
    await _fill(vault, 3)
    clock.advance(dt.timedelta(days=100))
    await _fill(vault, 2)
    cut = await vault.audit.cut_before(clock.now() - dt.timedelta(days=90))
    assert cut == 3
    await _fill(vault, 1)
    report = await vault.audit.verify()
    assert report.ok, report.problems
    assert report.checked == 3 and report.checkpoint_seq == 3
