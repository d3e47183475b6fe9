"""Fine-tuning data (R-12.1): conversations leave for training only with recorded explicit consent.

A call's transcript is exported only when its consent records for the purpose
``fine_tuning`` end in ``granted`` — the latest decision for that call counts, and a later
withdrawal or refusal recorded for the same person (on any call or none) revokes it. Calls
of restricted or objecting persons, anonymised calls and redacted (statistics) turns are
never exported. By default the exported text is PII-redacted as well (data minimisation);
the export is audited with counts only. Nothing else in voicedesk sends conversations to
any training.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from voicedesk.domain.errors import ErasedError, IntegrityError
from voicedesk.store.models import Call, Consent, Subject, Turn
from voicedesk.store.vault import Vault

__all__ = ["FINE_TUNING", "TrainingExport", "consented_calls", "do_export_training_data"]

FINE_TUNING = "fine_tuning"


@dataclass(frozen=True)
class TrainingExport:
    """What an export wrote: counts only."""

    calls: int
    turns: int
    path: Path


def _latest(decisions: Iterable[Consent]) -> Consent | None:
    latest: Consent | None = None
    for c in decisions:
        if latest is None or c.decided_at >= latest.decided_at:
            latest = c
    return latest


async def consented_calls(vault: Vault, tenant_id: uuid.UUID) -> list[uuid.UUID]:
    """The tenant's calls whose transcripts may be used for fine-tuning, oldest first."""
    async with vault.db.sessions() as s:
        consents = list((await s.scalars(select(Consent).where(Consent.tenant_id == tenant_id,
                                                               Consent.purpose == FINE_TUNING))).all())
        by_call: dict[uuid.UUID, list[Consent]] = {}
        by_subject: dict[uuid.UUID, list[Consent]] = {}
        for c in consents:
            if c.call_id is not None:
                by_call.setdefault(c.call_id, []).append(c)
            if c.subject_id is not None:
                by_subject.setdefault(c.subject_id, []).append(c)
        if not by_call:
            return []
        calls = (await s.execute(
            select(Call.id, Call.subject_id, Call.started_at, Subject.restricted, Subject.objected)
            .join(Subject, Subject.id == Call.subject_id)
            .where(Call.tenant_id == tenant_id, Call.id.in_(list(by_call)), Call.anonymised_at.is_(None))
            .order_by(Call.started_at, Call.id)
        )).all()
    allowed: list[uuid.UUID] = []
    for call in calls:
        granted = _latest(by_call[call.id])
        if granted is None or granted.decision != "granted" or call.restricted or call.objected:
            continue
        revoked = any(c.decision in {"withdrawn", "refused"} and c.decided_at > granted.decided_at
                      for c in by_subject.get(call.subject_id, []))
        if not revoked:
            allowed.append(call.id)
    return allowed


async def do_export_training_data(
    vault: Vault, tenant_id: uuid.UUID, out: Path, *, actor: str, redact: bool = True,
) -> TrainingExport:
    """Write JSON lines ``{"call_id", "language", "turns": [{"speaker", "text"}]}`` for consented calls only."""
    call_ids = await consented_calls(vault, tenant_id)
    records: list[dict[str, Any]] = []
    async with vault.db.sessions() as s:
        for call_id in call_ids:
            call = await s.get_one(Call, call_id)
            turns = (await s.scalars(select(Turn).where(Turn.call_id == call_id, Turn.redacted_at.is_(None))
                                     .order_by(Turn.seq))).all()
            texts: list[dict[str, str]] = []
            for t in turns:
                try:
                    text = await vault.keys.decrypt(tenant_id, t.text_enc, table="turns", row_id=t.id, column="text")
                except (ErasedError, IntegrityError):
                    continue
                if text:
                    texts.append({"speaker": t.speaker, "text": text})
            if texts:
                records.append({"call_id": str(call_id), "language": call.language, "turns": texts})
    if redact and records:
        from voicedesk.privacy.redaction import LANGUAGES, default_redactor

        def redact_all() -> None:
            redactor = default_redactor()
            for rec in records:
                lang = rec["language"] if rec["language"] in LANGUAGES else "de"
                for turn in rec["turns"]:
                    turn["text"] = redactor.redact(turn["text"], lang).text

        await asyncio.to_thread(redact_all)

    def write() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")

    await asyncio.to_thread(write)
    n_turns = sum(len(r["turns"]) for r in records)
    await vault.audit.record(actor=actor, action="training.export", tenant_id=tenant_id,
                             details={"calls": len(records), "turns": n_turns, "redacted": redact})
    return TrainingExport(len(records), n_turns, out)
