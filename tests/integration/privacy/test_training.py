"""Fine-tuning exports contain only calls with recorded, unrevoked fine-tuning consent (R-12.1)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, update
from tests.support.factories import make_tenant

from voicedesk.clock import FixedClock
from voicedesk.privacy.training import FINE_TUNING, consented_calls, do_export_training_data
from voicedesk.store.models import AuditEntry, Call, Consent, Subject, Tenant, Turn
from voicedesk.store.repos.subjects import add_subject
from voicedesk.store.vault import Vault

TEXT = "Hier ist Anna Kowalczyk, bitte rufen Sie mich unter 0171 2345678 zurück."


async def call_with(vault: Vault, tenant: Tenant, *decisions: tuple[str, str], subject_wide: str | None = None,
                    restricted: bool = False) -> uuid.UUID:
    """A call with one turn and consent records ``(purpose, decision)`` one minute apart."""
    now = vault.clock.now()
    async with vault.db.transaction() as s:
        subject = await add_subject(s, vault.keys, tenant.id, now=now, phone=f"+49171{uuid.uuid4().int % 10**7:07d}")
        subject.restricted = restricted
        call = Call(id=uuid.uuid4(), tenant_id=tenant.id, subject_id=subject.id, language="de", status="completed",
                    started_at=now)
        s.add(call)
        turn = Turn(id=uuid.uuid4(), tenant_id=tenant.id, call_id=call.id, seq=0, speaker="caller", start_ms=0,
                    end_ms=1000, created_at=now)
        turn.text_enc = await vault.keys.encrypt(tenant.id, subject.key_id, TEXT, table="turns", row_id=turn.id,
                                                 column="text")
        s.add(turn)
        for i, (purpose, decision) in enumerate(decisions):
            s.add(Consent(id=uuid.uuid4(), tenant_id=tenant.id, call_id=call.id, subject_id=subject.id,
                          purpose=purpose, decision=decision, method="voice",
                          decided_at=now + dt.timedelta(minutes=i)))
        if subject_wide:
            s.add(Consent(id=uuid.uuid4(), tenant_id=tenant.id, call_id=None, subject_id=subject.id,
                          purpose=FINE_TUNING, decision=subject_wide, method="staff",
                          decided_at=now + dt.timedelta(days=1)))
    return call.id


@pytest.mark.req("R-12.1")
@pytest.mark.req("R-11.3")
async def test_only_consented_calls_leave_for_training(vault: Vault, clock: FixedClock, tmp_path: Path) -> None:
    tenant = await make_tenant(vault)
    other = await make_tenant(vault, slug="harbor-auto")
    ok = await call_with(vault, tenant, ("recording", "granted"), (FINE_TUNING, "granted"))
    await call_with(vault, tenant, ("recording", "granted"), ("transcription", "granted"))
    await call_with(vault, tenant, (FINE_TUNING, "granted"), (FINE_TUNING, "withdrawn"))
    await call_with(vault, tenant, (FINE_TUNING, "granted"), subject_wide="withdrawn")
    await call_with(vault, tenant, (FINE_TUNING, "granted"), restricted=True)
    await call_with(vault, tenant, (FINE_TUNING, "refused"))
    anonymised = await call_with(vault, tenant, (FINE_TUNING, "granted"))
    async with vault.db.transaction() as s:
        await s.execute(update(Call).where(Call.id == anonymised).values(anonymised_at=clock.now()))
    foreign = await call_with(vault, other, (FINE_TUNING, "granted"))

    assert await consented_calls(vault, tenant.id) == [ok]
    out = tmp_path / "train.jsonl"
    result = await do_export_training_data(vault, tenant.id, out, actor="test")

    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [rec["call_id"] for rec in lines] == [str(ok)] and str(foreign) not in out.read_text()
    assert (result.calls, result.turns) == (1, 1)
    text = lines[0]["turns"][0]["text"]
    assert "Kowalczyk" not in text and "2345678" not in text and "zurück" in text
    raw = await do_export_training_data(vault, tenant.id, tmp_path / "raw.jsonl", actor="test", redact=False)
    assert raw.calls == 1 and TEXT in (tmp_path / "raw.jsonl").read_text(encoding="utf-8")
    async with vault.db.sessions() as s:
        details = (await s.scalars(select(AuditEntry.details).where(AuditEntry.action == "training.export"))).all()
    assert details[0] == {"calls": 1, "turns": 1, "redacted": True}


@pytest.mark.req("R-12.1")
async def test_a_later_withdrawal_empties_the_export(vault: Vault, tmp_path: Path) -> None:
    tenant = await make_tenant(vault)
    call_id = await call_with(vault, tenant, (FINE_TUNING, "granted"))
    assert await consented_calls(vault, tenant.id) == [call_id]
    async with vault.db.transaction() as s:
        subject_id = (await s.scalars(select(Call.subject_id).where(Call.id == call_id))).one()
        assert subject_id is not None
        s.add(Consent(id=uuid.uuid4(), tenant_id=tenant.id, call_id=None, subject_id=subject_id,
                      purpose=FINE_TUNING, decision="withdrawn", method="staff",
                      decided_at=vault.clock.now() + dt.timedelta(hours=1)))
        assert (await s.get_one(Subject, subject_id)).restricted is False
    result = await do_export_training_data(vault, tenant.id, tmp_path / "t.jsonl", actor="test")
    assert result.calls == 0 and (tmp_path / "t.jsonl").read_text() == ""
