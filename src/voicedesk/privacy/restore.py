"""Erasure that survives backups (R-8.3): replay the erasure ledger over restored data.

The key store (wrapped keys and the erasure ledger) is never part of a data backup. After
an older data backup has been restored, the people erased since that backup are back in
the data database, as ciphertext under keys that no longer exist. ``replay_erasure_ledger``
removes them again — rows and blobs — before anything is served, and closes the requests
that asked for it. It is idempotent and cheap when there is nothing to do (one query per
500 ledger entries), so it runs at every start-up and after every restore.

Call it from the composition roots: the web app's lifespan start-up (before serving) and
the restore command, e.g. ``await replay_erasure_ledger(vault)`` right after
``open_vault(...)``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import delete, select

from voicedesk.domain import dsar as rules
from voicedesk.privacy.dsar import access_request, move
from voicedesk.privacy.erasure import Purged, compact, delete_blobs, purge_subject
from voicedesk.store.models import DsarRequest, OutboxMessage, Subject
from voicedesk.store.vault import Vault

BATCH = 500
ACTOR = "system:erasure-ledger"


@dataclass
class ReplayReport:
    """What a replay found and removed (counts and pseudonymous ids only)."""

    entries: int = 0
    subjects_purged: list[uuid.UUID] = field(default_factory=list)
    requests_closed: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    blobs_deleted: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.subjects_purged or self.requests_closed or self.counts)


def _uuid(raw: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw) if raw else None
    except ValueError:
        return None


async def replay_erasure_ledger(vault: Vault) -> ReplayReport:
    """Delete every row and blob of every erased subject still found in the data database."""
    report = ReplayReport()
    entries = await vault.keystore.ledger()
    report.entries = len(entries)
    purged = Purged()
    for start in range(0, len(entries), BATCH):
        batch = entries[start:start + BATCH]
        subject_ids = {e.subject_id for e in batch}
        key_ids = {e.key_id for e in batch}
        erased_at = {rid: e.erased_at for e in batch if (rid := _uuid(e.request_id)) is not None}
        request_ids = set(erased_at)
        async with vault.db.transaction() as session:
            found = (await session.execute(select(Subject.id, Subject.tenant_id, Subject.key_id).where(
                Subject.id.in_(subject_ids) | Subject.key_id.in_(key_ids)))).all()
            for subject_id, tenant_id, key_id in found:
                vault.keys.forget_cached(key_id)
                purged.add(await purge_subject(session, tenant_id, subject_id))
                report.subjects_purged.append(subject_id)
            # Outbox rows have no foreign key to subjects: they may outlive a deleted subject row.
            result = await session.execute(delete(OutboxMessage).where(OutboxMessage.subject_id.in_(subject_ids)))
            outbox = int(getattr(result, "rowcount", 0) or 0)
            if outbox:
                purged.counts["outbox"] = purged.counts.get("outbox", 0) + outbox
            open_ids = (await session.scalars(select(DsarRequest.id).where(
                DsarRequest.id.in_(request_ids),
                DsarRequest.state.not_in([s.value for s in rules.DsarState if s.is_final])))).all()
            for request_id in open_ids:
                loaded = await access_request(session, request_id)
                state = rules.DsarState(loaded.request.state)
                if state is rules.DsarState.RECEIVED:
                    move(loaded, rules.DsarState.IDENTITY_VERIFICATION, erased_at[request_id])
                if state is not rules.DsarState.IN_PROGRESS:
                    move(loaded, rules.DsarState.IN_PROGRESS, erased_at[request_id])
                move(loaded, rules.DsarState.COMPLETED, erased_at[request_id])
                loaded.request.subject_id = None
                loaded.request.details_enc = None
                report.requests_closed += 1
    report.counts = purged.counts
    report.blobs_deleted = await delete_blobs(vault, purged.blob_keys)
    if report.changed:
        await compact(vault.db)
        await vault.audit.record(actor=ACTOR, action="erasure.replay",
                                 details={"entries": report.entries, "subjects": len(report.subjects_purged),
                                          "requests_closed": report.requests_closed, "rows": report.counts,
                                          "blobs": report.blobs_deleted})
    return report
