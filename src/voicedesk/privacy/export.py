"""Access and portability exports (Art. 15 and 20, R-8.1, R-8.5): one ZIP archive per request.

Contents::

    data.json        everything held about the person, decrypted (schema: schema.json)
    schema.json      JSON Schema (draft 2020-12) of data.json
    csv/*.csv        the same data as tables: contact, calls, turns, recordings, consents,
                     appointments, messages, dsar_requests (UTF-8, header row, RFC 4180)
    audio/<call>/<recording>-<track>.wav
                     call recordings, decrypted PCM s16le mono in a WAV container; the
                     recording's ``offset_ms`` in data.json places it on the call's clock
    statement.md     the Art. 15 statement (purposes, legal bases, recipients, retention,
    statement.html   source, rights, supervisory authority) in the tenant's language

The archive is written to a path the caller chooses (created 0600, renamed into place when
complete). Audio is streamed blob chunk by blob chunk into the archive, never held whole.
An export made for an authority records its legal basis on the request and in the audit
log (R-4.4). Recordings in end-to-end mode cannot be read by the server; they are listed
with ``file: null`` and ``e2e: true``.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import os
import struct
import uuid
import zipfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voicedesk.domain import dsar as rules
from voicedesk.domain.errors import InvalidInputError
from voicedesk.privacy.dsar import Loaded, access_request, move, require
from voicedesk.privacy.statement import ProcessorLike, build_statement
from voicedesk.store.models import (
    Appointment,
    AppointmentEvent,
    Call,
    Consent,
    DsarRequest,
    Message,
    Recording,
    Subject,
    Turn,
)
from voicedesk.store.repos import subjects as subject_repo
from voicedesk.store.vault import Vault

FORMAT = "voicedesk-subject-export"
VERSION = 1


@dataclass(frozen=True)
class ExportReport:
    request_id: uuid.UUID
    path: Path
    counts: dict[str, int]
    audio_files: int
    size_bytes: int


# --- the JSON Schema ---------------------------------------------------------------------------

_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_TIME = {"type": "string", "format": "date-time"}
_NTIME = {"type": ["string", "null"], "format": "date-time"}
_INT = {"type": "integer"}
_NINT = {"type": ["integer", "null"]}
_ID = {"type": "string", "format": "uuid"}
_NID = {"type": ["string", "null"], "format": "uuid"}
_BOOL = {"type": "boolean"}


def _obj(props: dict[str, Any], nullable: bool = False) -> dict[str, Any]:
    return {"type": ["object", "null"] if nullable else "object", "properties": props,
            "required": sorted(props), "additionalProperties": False}


SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:voicedesk:subject-export:1",
    "title": "Everything voicedesk holds about one person",
    **_obj({
        "format": {"const": FORMAT},
        "version": {"const": VERSION},
        "generated_at": _TIME,
        "controller": _obj({"name": _STR, "address": _NSTR, "email": _NSTR}),
        "request": _obj({"id": _ID, "kind": _STR, "state": _STR, "received_at": _TIME, "legal_basis": _NSTR}),
        "subject": _obj({"id": _ID, "created_at": _TIME, "last_contact_at": _TIME, "restricted": _BOOL,
                         "objected": _BOOL, "relationship_ended_at": _NTIME}),
        "contact": _obj({"first_name": _NSTR, "last_name": _NSTR, "email": _NSTR, "phone": _NSTR,
                         "address": _NSTR, "company": _NSTR, "customer_ref": _NSTR, "source": _STR,
                         "updated_at": _TIME}, nullable=True),
        "calls": {"type": "array", "items": _obj({
            "id": _ID, "provider_call_id": _NSTR, "direction": _STR, "from": _NSTR, "caller_name": _NSTR,
            "to": _NSTR, "language": _STR, "status": _STR, "started_at": _TIME, "answered_at": _NTIME,
            "ended_at": _NTIME, "duration_s": _NINT, "outcome": _NSTR, "summary": _NSTR,
            "recording_consent": _NSTR,
            "turns": {"type": "array", "items": _obj({
                "seq": _INT, "speaker": _STR, "text": _NSTR, "tool_calls": {}, "start_ms": _INT, "end_ms": _INT,
                "interrupted": _BOOL})},
            "recordings": {"type": "array", "items": _obj({
                "id": _ID, "track": _STR, "channels": _INT, "sample_rate": _INT, "offset_ms": _INT,
                "duration_ms": _INT, "e2e": _BOOL, "file": _NSTR})},
        })},
        "consents": {"type": "array", "items": _obj({
            "id": _ID, "call_id": _NID, "purpose": _STR, "decision": {"enum": ["granted", "refused", "withdrawn"]},
            "method": _STR, "decided_at": _TIME, "text_version": _NSTR, "text_sha256": _NSTR, "reason": _NSTR})},
        "appointments": {"type": "array", "items": _obj({
            "id": _ID, "call_id": _NID, "service": _STR, "staff": _STR, "start": _TIME, "end": _TIME,
            "status": _STR, "notes": _NSTR, "preferences": {}, "created_at": _TIME, "updated_at": _TIME,
            "history": {"type": "array", "items": _obj({"kind": _STR, "at": _TIME})}})},
        "messages": {"type": "array", "items": _obj({
            "id": _ID, "call_id": _NID, "name": _NSTR, "phone": _NSTR, "reason": _NSTR, "urgency": _STR,
            "status": _STR, "created_at": _TIME, "done_at": _NTIME})},
        "dsar_requests": {"type": "array", "items": _obj({
            "id": _ID, "kind": _STR, "state": _STR, "channel": _STR, "received_at": _TIME, "due_at": _TIME,
            "extended_until": _NTIME, "refusal_reason": _NSTR, "completed_at": _NTIME, "details": {}})},
    }),
}


# --- collecting --------------------------------------------------------------------------------


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def _json_or_text(raw: str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@dataclass
class Collected:
    document: dict[str, Any]
    recordings: list[tuple[Recording, str]]  # (row, archive path) of readable recordings


async def collect_subject_data(vault: Vault, session: AsyncSession, loaded: Loaded, subject: Subject,
                               now: dt.datetime) -> Collected:
    """Everything of ``subject`` in the tenant, decrypted, as one JSON-ready document."""
    keys, t_id = vault.keys, subject.tenant_id

    async def dec(table: str, row_id: uuid.UUID, column: str, blob: bytes | None) -> str | None:
        return await keys.decrypt(t_id, blob, table=table, row_id=row_id, column=column)

    contact_row = await subject_repo.get_contact(session, t_id, subject.id)
    contact: dict[str, Any] | None = None
    if contact_row is not None:
        data = await subject_repo.read_contact(keys, contact_row)
        contact = {**{k: getattr(data, k) for k in subject_repo.CONTACT_FIELDS}, "source": contact_row.source,
                   "updated_at": _iso(contact_row.updated_at)}

    calls_out: list[dict[str, Any]] = []
    recordings: list[tuple[Recording, str]] = []
    calls = (await session.scalars(select(Call).where(Call.tenant_id == t_id, Call.subject_id == subject.id)
                                   .order_by(Call.started_at, Call.id))).all()
    call_ids = [c.id for c in calls]
    # One query per table for all the subject's calls (not one per call: 500 calls were 1,100 queries).
    turns_of: dict[uuid.UUID, list[Turn]] = defaultdict(list)
    for t in (await session.scalars(
            select(Turn).join(Call, Turn.call_id == Call.id)
            .where(Turn.tenant_id == t_id, Call.tenant_id == t_id, Call.subject_id == subject.id)
            .order_by(Turn.call_id, Turn.seq))).all():
        turns_of[t.call_id].append(t)
    recordings_of: dict[uuid.UUID, list[Recording]] = defaultdict(list)
    for rec_row in (await session.scalars(
            select(Recording).join(Call, Recording.call_id == Call.id)
            .where(Recording.tenant_id == t_id, Call.tenant_id == t_id, Call.subject_id == subject.id)
            .order_by(Recording.call_id, Recording.created_at, Recording.track))).all():
        recordings_of[rec_row.call_id].append(rec_row)
    for call in calls:
        turns = turns_of.get(call.id, [])
        recs = recordings_of.get(call.id, [])
        rec_out = []
        for rec in recs:
            path = None if rec.e2e else f"audio/{call.id}/{rec.id}-{rec.track}.wav"
            if path is not None:
                recordings.append((rec, path))
            rec_out.append({"id": str(rec.id), "track": rec.track, "channels": rec.channels,
                            "sample_rate": rec.sample_rate, "offset_ms": rec.offset_ms,
                            "duration_ms": rec.duration_ms, "e2e": rec.e2e, "file": path})
        calls_out.append({
            "id": str(call.id), "provider_call_id": call.provider_call_id, "direction": call.direction,
            "from": (await dec("calls", call.id, "from", call.from_enc)) or None,
            "caller_name": await dec("calls", call.id, "caller_name", call.caller_name_enc),
            "to": call.to_number, "language": call.language, "status": call.status,
            "started_at": _iso(call.started_at), "answered_at": _iso(call.answered_at),
            "ended_at": _iso(call.ended_at), "duration_s": call.duration_s, "outcome": call.outcome,
            "summary": await dec("calls", call.id, "summary", call.summary_enc),
            "recording_consent": call.recording_consent,
            "turns": [{"seq": t.seq, "speaker": t.speaker, "text": await dec("turns", t.id, "text", t.text_enc),
                       "tool_calls": _json_or_text(await dec("turns", t.id, "tool_calls", t.tool_calls_enc)),
                       "start_ms": t.start_ms, "end_ms": t.end_ms, "interrupted": t.interrupted} for t in turns],
            "recordings": rec_out,
        })

    consent_q = select(Consent).where(Consent.tenant_id == t_id, (Consent.subject_id == subject.id)
                                      | Consent.call_id.in_(call_ids)).order_by(Consent.decided_at, Consent.id)
    consents = [{"id": str(c.id), "call_id": str(c.call_id) if c.call_id else None, "purpose": c.purpose,
                 "decision": c.decision, "method": c.method, "decided_at": _iso(c.decided_at),
                 "text_version": c.text_version, "text_sha256": c.text_sha256, "reason": c.reason}
                for c in (await session.scalars(consent_q)).all()]

    appointments = []
    events_of: dict[uuid.UUID, list[AppointmentEvent]] = defaultdict(list)
    for e in (await session.scalars(
            select(AppointmentEvent).join(Appointment, AppointmentEvent.appointment_id == Appointment.id)
            .where(AppointmentEvent.tenant_id == t_id, Appointment.tenant_id == t_id,
                   Appointment.subject_id == subject.id)
            .order_by(AppointmentEvent.appointment_id, AppointmentEvent.at))).all():
        events_of[e.appointment_id].append(e)
    for a in (await session.scalars(select(Appointment).where(Appointment.tenant_id == t_id,
                                                               Appointment.subject_id == subject.id)
                                    .order_by(Appointment.start_at, Appointment.id))).all():
        events = events_of.get(a.id, [])
        appointments.append({
            "id": str(a.id), "call_id": str(a.call_id) if a.call_id else None, "service": a.service_id,
            "staff": a.staff_id, "start": _iso(a.start_at), "end": _iso(a.end_at), "status": a.status,
            "notes": await dec("appointments", a.id, "notes", a.notes_enc),
            "preferences": _json_or_text(await dec("appointments", a.id, "preferences", a.preferences_enc)),
            "created_at": _iso(a.created_at), "updated_at": _iso(a.updated_at),
            "history": [{"kind": e.kind, "at": _iso(e.at)} for e in events],
        })

    messages = [{"id": str(m.id), "call_id": str(m.call_id) if m.call_id else None,
                 "name": await dec("messages", m.id, "name", m.name_enc),
                 "phone": await dec("messages", m.id, "phone", m.phone_enc),
                 "reason": await dec("messages", m.id, "reason", m.reason_enc), "urgency": m.urgency,
                 "status": m.status, "created_at": _iso(m.created_at), "done_at": _iso(m.done_at)}
                for m in (await session.scalars(select(Message).where(Message.tenant_id == t_id,
                                                                      Message.subject_id == subject.id)
                                                .order_by(Message.created_at, Message.id))).all()]

    requests = []
    for r in (await session.scalars(select(DsarRequest).where(DsarRequest.tenant_id == t_id,
                                                               DsarRequest.subject_id == subject.id)
                                    .order_by(DsarRequest.received_at, DsarRequest.id))).all():
        requests.append({"id": str(r.id), "kind": r.kind, "state": r.state, "channel": r.channel,
                         "received_at": _iso(r.received_at), "due_at": _iso(r.due_at),
                         "extended_until": _iso(r.extended_until), "refusal_reason": r.refusal_reason,
                         "completed_at": _iso(r.completed_at),
                         "details": _json_or_text(await dec("dsar_requests", r.id, "details", r.details_enc))})

    profile = loaded.profile
    controller = profile.controller
    document: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "generated_at": _iso(now),
        "controller": {"name": controller.name if controller else profile.name,
                       "address": controller.address if controller else profile.address,
                       "email": controller.email if controller else None},
        "request": {"id": str(loaded.request.id), "kind": loaded.request.kind, "state": loaded.request.state,
                    "received_at": _iso(loaded.request.received_at), "legal_basis": loaded.request.legal_basis},
        "subject": {"id": str(subject.id), "created_at": _iso(subject.created_at),
                    "last_contact_at": _iso(subject.last_contact_at), "restricted": subject.restricted,
                    "objected": subject.objected, "relationship_ended_at": _iso(subject.relationship_ended_at)},
        "contact": contact, "calls": calls_out, "consents": consents, "appointments": appointments,
        "messages": messages, "dsar_requests": requests,
    }
    return Collected(document, recordings)


def counts_of(document: dict[str, Any]) -> dict[str, int]:
    calls = document["calls"]
    return {"contact": 1 if document["contact"] else 0, "calls": len(calls),
            "turns": sum(len(c["turns"]) for c in calls), "recordings": sum(len(c["recordings"]) for c in calls),
            "consents": len(document["consents"]), "appointments": len(document["appointments"]),
            "messages": len(document["messages"]), "dsar_requests": len(document["dsar_requests"])}


# --- CSV and WAV -------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue().encode("utf-8")


def _columns(item_schema: dict[str, Any], drop: Sequence[str] = ()) -> list[str]:
    return [k for k in item_schema["properties"] if k not in drop]


def csv_tables(document: dict[str, Any]) -> dict[str, bytes]:
    """One CSV table per record kind; nested lists become their own tables with a parent id column."""
    props = SCHEMA["properties"]
    call_item = props["calls"]["items"]
    calls = document["calls"]
    turns = [{"call_id": c["id"], **t} for c in calls for t in c["turns"]]
    recs = [{"call_id": c["id"], **r} for c in calls for r in c["recordings"]]
    appt_cols = _columns(props["appointments"]["items"], drop=("history",))
    return {
        "csv/contact.csv": _csv([document["contact"]] if document["contact"] else [],
                                _columns({"properties": props["contact"]["properties"]})),
        "csv/calls.csv": _csv(calls, _columns(call_item, drop=("turns", "recordings"))),
        "csv/turns.csv": _csv(turns, ["call_id", *_columns(call_item["properties"]["turns"]["items"])]),
        "csv/recordings.csv": _csv(recs, ["call_id", *_columns(call_item["properties"]["recordings"]["items"])]),
        "csv/consents.csv": _csv(document["consents"], _columns(props["consents"]["items"])),
        "csv/appointments.csv": _csv(document["appointments"], appt_cols),
        "csv/messages.csv": _csv(document["messages"], _columns(props["messages"]["items"])),
        "csv/dsar_requests.csv": _csv(document["dsar_requests"], _columns(props["dsar_requests"]["items"])),
    }


def wav_header(data_bytes: int, sample_rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """A 44-byte RIFF/WAVE header for ``data_bytes`` of PCM (so the data can be streamed after it)."""
    block = channels * bits // 8
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block, block, bits)
            + b"data" + struct.pack("<I", data_bytes))


async def _write_audio(vault: Vault, zf: zipfile.ZipFile, rec: Recording, path: str, key_id: uuid.UUID) -> bool:
    key = await vault.keys.blob_key(rec.tenant_id, key_id, rec.blob_key)
    if not await vault.blobs.exists(rec.blob_key):
        return False
    size = rec.size_bytes if rec.completed_at is not None else 0
    if size <= 0:  # an unfinished recording: count first, then stream
        async for chunk in vault.blobs.read(rec.blob_key, key):
            size += len(chunk)
    size -= size % 2
    written = 0
    with zf.open(zipfile.ZipInfo(path, date_time=_zip_time(rec.created_at)), "w", force_zip64=True) as fh:
        fh.write(wav_header(size, rec.sample_rate, rec.channels))
        async for chunk in vault.blobs.read(rec.blob_key, key):
            part = chunk[: max(size - written, 0)]
            if part:
                await asyncio.to_thread(fh.write, part)
                written += len(part)
        if written < size:
            await asyncio.to_thread(fh.write, b"\x00" * (size - written))
    return True


def _zip_time(at: dt.datetime) -> tuple[int, int, int, int, int, int]:
    t = at.astimezone(dt.UTC)
    return (max(t.year, 1980), t.month, t.day, t.hour, t.minute, t.second)


def _write_text(zf: zipfile.ZipFile, name: str, data: bytes, at: dt.datetime) -> None:
    info = zipfile.ZipInfo(name, date_time=_zip_time(at))
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


# --- the service -------------------------------------------------------------------------------


def _open_private(path: Path) -> IO[bytes]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    return os.fdopen(fd, "wb")


async def do_export(
    vault: Vault, request_id: uuid.UUID | str, out: Path, *, actor: str, processors: Sequence[ProcessorLike],
    authority_basis: str | None = None, tenant_id: uuid.UUID | None = None,
) -> ExportReport:
    """Write the archive of a verified access/portability request to ``out`` and complete the request.

    ``authority_basis`` marks an export for an authority: the legal basis is stored on the
    request and written to the audit log (R-4.4).
    """
    if await asyncio.to_thread(out.exists):
        raise InvalidInputError("the output file exists already", field="out")
    if authority_basis is not None and not authority_basis.strip():
        raise InvalidInputError("the legal basis of an authority request cannot be empty", field="authority_basis")
    now = vault.clock.now()
    part = out.with_name(out.name + ".part")
    async with vault.db.transaction() as session:
        loaded = await access_request(session, request_id, tenant_id=tenant_id)
        require(loaded, ["access", "portability"])
        subject = loaded.require_subject()
        if authority_basis is not None:
            loaded.request.legal_basis = authority_basis.strip()[:200]
        collected = await collect_subject_data(vault, session, loaded, subject, now)
        document = collected.document
        counts = counts_of(document)
        statement = build_statement(loaded.profile, processors, counts, request_id=str(loaded.request.id),
                                    generated_at=now)
        audio = 0
        try:
            with _open_private(part) as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
                _write_text(zf, "data.json", json.dumps(document, ensure_ascii=False, indent=2).encode(), now)
                _write_text(zf, "schema.json", json.dumps(SCHEMA, indent=2).encode(), now)
                for name, table in csv_tables(document).items():
                    _write_text(zf, name, table, now)
                _write_text(zf, "statement.md", statement.markdown().encode(), now)
                _write_text(zf, "statement.html", statement.html().encode(), now)
                for rec, path in collected.recordings:
                    if await _write_audio(vault, zf, rec, path, subject.key_id):
                        audio += 1
            os.replace(part, out)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        move(loaded, rules.DsarState.COMPLETED, now)
    size = (await asyncio.to_thread(out.stat)).st_size
    await vault.audit.record(
        actor=actor, action="dsar.export", tenant_id=loaded.tenant.id, object_type="dsar_request",
        object_id=loaded.request.id, reason=(f"authority request; legal basis: {authority_basis.strip()}"[:200]
                                             if authority_basis else None),
        details={"counts": counts, "audio_files": audio, "bytes": size, "authority": authority_basis is not None})
    return ExportReport(loaded.request.id, out, counts, audio, size)

