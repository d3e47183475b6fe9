"""Storage side of a live call: the ``voice.sinks`` ports implemented on the vault.

Turns are persisted one transaction each, at once (a crash loses at most the turn in
flight). Recordings are streamed per track into encrypted blobs, silence-padded to the
stream clock, so both tracks line up; withdrawal deletes every byte recorded so far.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import delete, select

from voicedesk.domain.consent import ConsentDecision
from voicedesk.privacy.e2e import E2ERecordingKeys, recording_keys_for
from voicedesk.store.blobs import BlobWriter
from voicedesk.store.models import Call, Consent, Recording, Turn
from voicedesk.store.vault import Vault
from voicedesk.voice.sinks import RecordedChunk, RecordingStart, TurnRecord

SYSTEM = "system:call-runtime"


@dataclass
class CallRef:
    tenant_id: uuid.UUID
    call_id: uuid.UUID
    subject_id: uuid.UUID
    key_id: uuid.UUID


class StoreTurnSink:
    """Persists each finished turn encrypted under the caller's data key."""

    def __init__(self, vault: Vault, ref: CallRef) -> None:
        self.vault, self.ref = vault, ref

    async def add(self, turn: TurnRecord) -> None:
        r = self.ref
        spoken = turn.heard_text if turn.speaker == "assistant" and turn.heard_text is not None else turn.text
        async with self.vault.db.transaction() as s:
            row = Turn(id=uuid.uuid4(), tenant_id=r.tenant_id, call_id=r.call_id, seq=turn.index,
                       speaker=turn.speaker, start_ms=turn.start_ms, end_ms=turn.end_ms,
                       interrupted=turn.interrupted, created_at=self.vault.clock.now())
            row.text_enc = await self.vault.keys.encrypt(r.tenant_id, r.key_id, spoken, table="turns", row_id=row.id,
                                                         column="text")
            if turn.actions or turn.intent:
                meta = json.dumps({"intent": turn.intent, "actions": list(turn.actions),
                                   "intended_text": turn.text if turn.interrupted else None})
                row.tool_calls_enc = await self.vault.keys.encrypt(r.tenant_id, r.key_id, meta, table="turns",
                                                                   row_id=row.id, column="tool_calls")
            s.add(row)

    async def discard(self) -> None:
        async with self.vault.db.transaction() as s:
            await s.execute(delete(Turn).where(Turn.tenant_id == self.ref.tenant_id, Turn.call_id == self.ref.call_id))


class StoreConsentSink:
    """Every consent decision becomes a consent record (R-4.2, R-14)."""

    def __init__(self, vault: Vault, ref: CallRef) -> None:
        self.vault, self.ref = vault, ref

    async def record(self, decision: ConsentDecision) -> None:
        r = self.ref
        async with self.vault.db.transaction() as s:
            s.add(Consent(id=uuid.uuid4(), tenant_id=r.tenant_id, call_id=r.call_id, subject_id=r.subject_id,
                          purpose=decision.purpose, decision=decision.decision, method=decision.method,
                          decided_at=decision.at, text_version=decision.text_version,
                          text_sha256=decision.text_sha256, reason=decision.reason[:200] or None))
            if decision.purpose == "recording":
                call = await s.get(Call, r.call_id)
                if call is not None:
                    call.recording_consent = decision.decision
        await self.vault.audit.record(actor=SYSTEM, action="consent.record", tenant_id=r.tenant_id,
                                      object_type="call", object_id=r.call_id,
                                      details={"purpose": decision.purpose, "decision": decision.decision,
                                               "method": decision.method})


@dataclass
class _Track:
    recording_id: uuid.UUID
    blob_name: str
    writer: BlobWriter
    samples: int = 0


@dataclass
class StoreRecordingSink:
    """Streams both directions into encrypted blobs; nothing is kept whole in memory."""

    vault: Vault
    ref: CallRef
    sample_rate: int = 8000
    _start: RecordingStart | None = None
    _tracks: dict[str, _Track] = field(default_factory=dict)
    _e2e: E2ERecordingKeys | None = None

    async def open(self, start: RecordingStart) -> None:
        self._start = start
        self.sample_rate = start.sample_rate
        self._e2e = await recording_keys_for(self.vault, self.ref.tenant_id)

    async def _track(self, name: str) -> _Track:
        track = self._tracks.get(name)
        if track is not None:
            return track
        r = self.ref
        rec_id = uuid.uuid4()
        if self._e2e is not None:  # end-to-end mode: only the tenant's private key can read it
            target = self._e2e.new_recording(r.tenant_id, r.call_id, rec_id)
            blob_name, key = target.blob_name, target.key
        else:
            blob_name = f"{r.tenant_id}/recordings/{r.call_id}/{rec_id}.pcm"
            key = await self.vault.keys.blob_key(r.tenant_id, r.key_id, blob_name)
        writer = await self.vault.blobs.open_writer(blob_name, key)
        async with self.vault.db.transaction() as s:
            s.add(Recording(id=rec_id, tenant_id=r.tenant_id, call_id=r.call_id, blob_key=blob_name, track=name,
                            channels=1, sample_rate=self.sample_rate, codec="pcm_s16le",
                            offset_ms=self._start.offset_ms if self._start else 0, e2e=self._e2e is not None,
                            created_at=self.vault.clock.now()))
        track = _Track(rec_id, blob_name, writer)
        self._tracks[name] = track
        return track

    async def write(self, chunk: RecordedChunk) -> None:
        if self._start is None:
            return
        track = await self._track(chunk.track)
        # Align to the stream clock: pad the gap since the last chunk with silence.
        target = (chunk.offset_ms - self._start.offset_ms) * self.sample_rate // 1000
        if target > track.samples:
            gap = target - track.samples
            await track.writer.write(np.zeros(gap, dtype=np.int16).tobytes())
            track.samples += gap
        await track.writer.write(chunk.pcm.astype("<i2").tobytes())
        track.samples += int(chunk.pcm.size)

    async def close(self) -> None:
        for track in self._tracks.values():
            size = await track.writer.close()
            async with self.vault.db.transaction() as s:
                rec = await s.get(Recording, track.recording_id)
                if rec is not None:
                    rec.size_bytes = size
                    rec.duration_ms = track.samples * 1000 // self.sample_rate
                    rec.completed_at = self.vault.clock.now()
        self._tracks.clear()

    async def discard(self) -> None:
        """Withdrawal: abort the writers and delete every recording of this call."""
        for track in self._tracks.values():
            await track.writer.abort()
        self._tracks.clear()
        r = self.ref
        async with self.vault.db.transaction() as s:
            rows = list((await s.scalars(select(Recording).where(Recording.tenant_id == r.tenant_id,
                                                                 Recording.call_id == r.call_id))).all())
            for rec in rows:
                await self.vault.blobs.delete(rec.blob_key)
            await s.execute(delete(Recording).where(Recording.tenant_id == r.tenant_id,
                                                    Recording.call_id == r.call_id))
        self._start = None
