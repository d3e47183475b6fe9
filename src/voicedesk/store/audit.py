"""Append-only, hash-chained access log (R-10.2).

Each entry carries the previous entry's hash; the hash is an HMAC under a key derived from
the master key, so nobody with database access alone can rewrite the chain. The signed head
(latest seq and hash) lives in the key store, so a truncated tail is detected too. Old
entries can be cut by retention behind a signed checkpoint; verification then starts from
the checkpoint. Entries name actor, tenant, action, object type and id, reason and
non-personal details (counts) — never personal data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, select, text

from voicedesk.clock import Clock
from voicedesk.store.keystore import KeyStore
from voicedesk.store.models import AuditCheckpoint, AuditEntry
from voicedesk.store.session import Database

GENESIS = "0" * 64


@dataclass
class VerifyReport:
    ok: bool
    checked: int
    problems: list[str] = field(default_factory=list)
    checkpoint_seq: int | None = None


def _canonical(entry: AuditEntry) -> bytes:
    doc = {
        "seq": entry.seq,
        "at": entry.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": entry.actor,
        "tenant_id": str(entry.tenant_id) if entry.tenant_id else None,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "reason": entry.reason,
        "details": entry.details,
        "prev_hash": entry.prev_hash,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class AuditLog:
    """Writes and verifies the chain. Each append is its own short transaction."""

    def __init__(self, db: Database, keystore: KeyStore, key: bytes, clock: Clock) -> None:
        self.db = db
        self.keystore = keystore
        self._key = key
        self.clock = clock
        self._lock = asyncio.Lock()

    def _hash(self, entry: AuditEntry) -> str:
        return hmac.new(self._key, _canonical(entry), hashlib.sha256).hexdigest()

    def _sign_head(self, seq: int, hash_: str) -> str:
        return hmac.new(self._key, f"head|{seq}|{hash_}".encode(), hashlib.sha256).hexdigest()

    def _sign_checkpoint(self, cp: AuditCheckpoint) -> str:
        msg = f"checkpoint|{cp.through_seq}|{cp.through_hash}|{cp.entries_cut}|{cp.at.isoformat()}"
        return hmac.new(self._key, msg.encode(), hashlib.sha256).hexdigest()

    async def record(
        self, *, actor: str, action: str, tenant_id: uuid.UUID | None = None, object_type: str | None = None,
        object_id: str | uuid.UUID | None = None, reason: str | None = None, details: dict[str, Any] | None = None,
    ) -> int:
        """Append one entry and return its sequence number."""
        async with self._lock, self.db.transaction() as s:
            if not self.db.is_sqlite:
                await s.execute(text("SELECT pg_advisory_xact_lock(7460011)"))
            else:
                # Take SQLite's write lock before reading the tail so two processes cannot fork the chain.
                await s.execute(text("UPDATE audit_checkpoints SET id = id WHERE 0"))
            last = (await s.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc())
                                    .limit(1))).first()
            if last is None:
                cp = (await s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1))).first()
                seq, prev = (cp.through_seq + 1, cp.through_hash) if cp else (1, GENESIS)
            else:
                seq, prev = last[0] + 1, last[1]
            entry = AuditEntry(
                seq=seq, at=self.clock.now(), actor=actor, tenant_id=tenant_id, action=action,
                object_type=object_type, object_id=str(object_id) if object_id is not None else None,
                reason=reason, details=details or {}, prev_hash=prev, hash="",
            )
            entry.hash = self._hash(entry)
            s.add(entry)
        await self.keystore.put_audit_head(seq, entry.hash, self._sign_head(seq, entry.hash))
        return seq

    async def verify(self) -> VerifyReport:
        """Check every link, every hash, the checkpoint signature and the signed head."""
        problems: list[str] = []
        async with self.db.sessions() as s:
            cp = (await s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1))).first()
            expected_seq, expected_prev = 1, GENESIS
            if cp is not None:
                if not hmac.compare_digest(cp.signature, self._sign_checkpoint(cp)):
                    problems.append(f"checkpoint {cp.id}: signature invalid")
                expected_seq, expected_prev = cp.through_seq + 1, cp.through_hash
            checked = 0
            last_seq, last_hash = expected_seq - 1, expected_prev
            stream = await s.stream_scalars(select(AuditEntry).order_by(AuditEntry.seq).execution_options(
                yield_per=1000))
            async for entry in stream:
                checked += 1
                if entry.seq != expected_seq:
                    problems.append(f"entry {entry.seq}: expected sequence {expected_seq} (entry missing or moved)")
                if entry.prev_hash != expected_prev:
                    problems.append(f"entry {entry.seq}: does not link to the previous entry")
                if not hmac.compare_digest(entry.hash, self._hash(entry)):
                    problems.append(f"entry {entry.seq}: content does not match its hash (altered)")
                expected_seq, expected_prev = entry.seq + 1, entry.hash
                last_seq, last_hash = entry.seq, entry.hash
        head = await self.keystore.get_audit_head()
        if head is not None:
            if not hmac.compare_digest(head.signature, self._sign_head(head.seq, head.hash)):
                problems.append("signed head: signature invalid")
            elif head.seq > last_seq:
                problems.append(f"log ends at {last_seq} but {head.seq} entries were written (tail truncated)")
            elif head.seq == last_seq and head.hash != last_hash:
                problems.append(f"entry {last_seq}: differs from the signed head")
        elif checked:
            problems.append("signed head missing from the key store")
        return VerifyReport(ok=not problems, checked=checked, problems=problems,
                            checkpoint_seq=cp.through_seq if cp else None)

    async def cut_before(self, before: dt.datetime) -> int:
        """Retention: delete entries older than ``before`` behind a signed checkpoint."""
        async with self._lock, self.db.transaction() as s:
            last = (await s.execute(
                select(AuditEntry.seq, AuditEntry.hash).where(AuditEntry.at < before)
                .order_by(AuditEntry.seq.desc()).limit(1)
            )).first()
            if last is None:
                return 0
            n = int(await s.scalar(select(func.count()).select_from(AuditEntry)
                                   .where(AuditEntry.seq <= last[0])) or 0)
            prev = (await s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1))).first()
            cp = AuditCheckpoint(through_seq=last[0], through_hash=last[1],
                                 entries_cut=n + (prev.entries_cut if prev else 0), at=self.clock.now(), signature="")
            cp.signature = self._sign_checkpoint(cp)
            s.add(cp)
            await s.execute(delete(AuditEntry).where(AuditEntry.seq <= last[0]))
            return n
