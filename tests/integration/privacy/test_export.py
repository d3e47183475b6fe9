"""Access and portability exports (R-8.1, R-8.5): the archive is complete, valid against its
JSON Schema, its CSV tables parse, its audio plays in ``soundfile``, its statement lists the
configured processors and the supervisory authority — and it holds nobody else's data."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
import soundfile
from sqlalchemy import select
from tests.integration.privacy.dsar_seed import ALICE, BORIS, CARLA, seed_person, thursday
from tests.support.factories import make_tenant

from voicedesk.domain.errors import ConflictError, InvalidInputError
from voicedesk.integrations.email import SmtpEmail
from voicedesk.integrations.processors import Processor
from voicedesk.integrations.sms import TwilioSms
from voicedesk.privacy import dsar
from voicedesk.privacy.export import SCHEMA, do_export
from voicedesk.store.models import AuditEntry, DsarRequest
from voicedesk.store.vault import Vault

STAFF = "cli:frau-berger"
PROCESSORS = [
    TwilioSms(account_sid="AC" + "0" * 32, auth_token="x", sender="+4969123456780", region="ie1").processor,
    SmtpEmail(host="mail.praxis-mueller.example", sender="praxis@praxis-mueller.example").processor,
    Processor(name="ElevenLabs", purpose="speech synthesis", location="USA", data_categories=("assistant replies",),
              transfer_safeguard="EU-US Data Privacy Framework"),
]


def _read(zf: zipfile.ZipFile, name: str) -> str:
    return zf.read(name).decode("utf-8")


async def _verified(vault: Vault, kind: str, phone: str, slug: str = "praxis-mueller") -> uuid.UUID:
    view = await dsar.do_create_request(vault, slug, kind, phone=phone, actor=STAFF)
    await dsar.do_confirm_by_staff(vault, view.id, actor=STAFF)
    return view.id


@pytest.mark.req("R-8.1")
@pytest.mark.req("R-8.5")
@pytest.mark.req("R-11.1")
async def test_export_archive_is_complete_valid_and_only_about_the_person(vault: Vault, tmp_path: Path) -> None:
    tenant = await make_tenant(vault)
    alice = await seed_person(vault, tenant, ALICE, slot=thursday(9), freq=440)
    await seed_person(vault, tenant, BORIS, slot=thursday(9, 30), freq=660)
    request_id = await _verified(vault, "portability", ALICE.phone)
    out = tmp_path / "alice.zip"
    report = await do_export(vault, request_id, out, actor=STAFF, processors=PROCESSORS)
    assert report.counts == {"contact": 1, "calls": 1, "turns": 3, "recordings": 2, "consents": 2,
                             "appointments": 1, "messages": 1, "dsar_requests": 2}
    assert report.audio_files == 2 and out.stat().st_mode & 0o077 == 0

    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        doc: dict[str, Any] = json.loads(_read(zf, "data.json"))
        schema = json.loads(_read(zf, "schema.json"))
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)
        assert schema == SCHEMA

        assert doc["contact"]["first_name"] == ALICE.first and doc["contact"]["email"] == ALICE.email
        call = doc["calls"][0]
        assert (call["id"], call["from"], call["caller_name"]) == (str(alice.call_id), ALICE.phone, ALICE.name)
        assert ALICE.email in call["turns"][1]["text"] and call["turns"][2]["tool_calls"]["actions"] == ["book"]
        assert call["summary"].startswith(ALICE.name)
        assert doc["appointments"][0]["preferences"]["note"] == f"{ALICE.first} mag Vormittage"
        assert [h["kind"] for h in doc["appointments"][0]["history"]] == ["booked"]
        assert doc["messages"][0]["reason"] == f"Rückruf an {ALICE.name} wegen {ALICE.ref}"
        assert {r["kind"] for r in doc["dsar_requests"]} == {"access", "portability"}
        assert {(c["purpose"], c["decision"]) for c in doc["consents"]} == {("recording", "granted"),
                                                                             ("transcription", "granted")}

        tables = {n: list(csv.DictReader(io.StringIO(_read(zf, n)))) for n in names if n.startswith("csv/")}
        assert set(tables) == {f"csv/{t}.csv" for t in ("contact", "calls", "turns", "recordings", "consents",
                                                         "appointments", "messages", "dsar_requests")}
        assert tables["csv/contact.csv"][0]["last_name"] == ALICE.last
        assert [r["seq"] for r in tables["csv/turns.csv"]] == ["0", "1", "2"]
        assert {r["call_id"] for r in tables["csv/turns.csv"]} == {str(alice.call_id)}
        assert json.loads(tables["csv/appointments.csv"][0]["preferences"])["staff_id"] == "dr-mueller"

        caller = next(r for r in call["recordings"] if r["track"] == "caller")
        with zf.open(caller["file"]) as fh:
            samples, rate = soundfile.read(io.BytesIO(fh.read()), dtype="int16")
        assert rate == 8000 and np.array_equal(samples, alice.pcm)
        assistant = next(r for r in call["recordings"] if r["track"] == "assistant")
        info = soundfile.info(io.BytesIO(zf.read(assistant["file"])))
        assert (info.samplerate, info.channels, info.frames) == (8000, 1, 4000)

        statement = _read(zf, "statement.md")
        html = _read(zf, "statement.html")
        everything = b"".join(zf.read(n) for n in names)

    for processor in PROCESSORS:
        assert processor.name in statement and processor.location in statement
    assert "Der Hessische Beauftragte für Datenschutz und Informationsfreiheit" in statement
    assert "Art. 6 Abs. 1 lit. a DSGVO" in statement and "Gesprächsaufzeichnungen: 90 Tage" in statement
    assert "Hausarztpraxis Dr. Müller" in statement and str(request_id) in statement
    assert html.startswith("<!doctype html>") and "EU-US Data Privacy Framework" in html and "http" not in html.split(
        "<body>")[0].replace('lang="de"', "")
    for other in (BORIS.first, BORIS.last, BORIS.phone, BORIS.email, BORIS.ref):
        assert other.encode() not in everything

    async with vault.db.sessions() as s:
        row = await s.get(DsarRequest, request_id)
        audit = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "dsar.export"))).one()
    assert row is not None and row.state == "completed" and row.completed_at is not None
    assert audit.reason is None and audit.details["counts"]["calls"] == 1 and audit.details["authority"] is False
    assert ALICE.phone not in json.dumps(audit.details)


@pytest.mark.req("R-8.1")
async def test_statement_in_english_for_an_english_tenant_and_without_processors(
    vault: Vault, tmp_path: Path
) -> None:
    await make_tenant(vault, slug="harbor-auto")
    request_id = await _verified(vault, "access", CARLA.phone, slug="harbor-auto")
    out = tmp_path / "carla.zip"
    report = await do_export(vault, request_id, out, actor=STAFF, processors=[])
    assert report.counts["dsar_requests"] == 1 and report.counts["calls"] == 0
    with zipfile.ZipFile(out) as zf:
        statement = _read(zf, "statement.md")
        doc = json.loads(_read(zf, "data.json"))
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(doc)
    assert "Access statement under Art. 15 GDPR" in statement
    assert "None: the data is processed on our own systems only." in statement
    assert "Right to lodge a complaint" in statement and "Art. 77 GDPR" in statement


@pytest.mark.req("R-4.4")
async def test_an_export_for_an_authority_records_its_legal_basis(vault: Vault, tmp_path: Path) -> None:
    tenant = await make_tenant(vault)
    await seed_person(vault, tenant, ALICE, slot=thursday(9))
    request_id = await _verified(vault, "access", ALICE.phone)
    basis = "§ 161 StPO, Ersuchen der Staatsanwaltschaft Frankfurt, Az. 123 Js 456/26"
    with pytest.raises(InvalidInputError):
        await do_export(vault, request_id, tmp_path / "a.zip", actor=STAFF, processors=[], authority_basis=" ")
    await do_export(vault, request_id, tmp_path / "a.zip", actor=STAFF, processors=PROCESSORS,
                    authority_basis=basis)
    async with vault.db.sessions() as s:
        row = await s.get(DsarRequest, request_id)
        audit = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "dsar.export"))).one()
    assert row is not None and row.legal_basis == basis
    assert audit.reason == f"authority request; legal basis: {basis}" and audit.details["authority"] is True
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert json.loads(_read(zf, "data.json"))["request"]["legal_basis"] == basis
    assert (await vault.audit.verify()).ok


@pytest.mark.req("R-8.1")
async def test_export_needs_a_verified_access_request_and_a_new_file(vault: Vault, tmp_path: Path) -> None:
    tenant = await make_tenant(vault)
    await seed_person(vault, tenant, ALICE, slot=thursday(9))
    unverified = await dsar.do_create_request(vault, "praxis-mueller", "access", phone=ALICE.phone, actor=STAFF)
    with pytest.raises(ConflictError, match="verify the identity first"):
        await do_export(vault, unverified.id, tmp_path / "x.zip", actor=STAFF, processors=[])
    erasure = await _verified(vault, "erasure", ALICE.phone)
    with pytest.raises(ConflictError, match="erasure request"):
        await do_export(vault, erasure, tmp_path / "x.zip", actor=STAFF, processors=[])
    (tmp_path / "taken.zip").write_bytes(b"")
    access = await _verified(vault, "access", ALICE.phone)
    with pytest.raises(InvalidInputError):
        await do_export(vault, access, tmp_path / "taken.zip", actor=STAFF, processors=[])
    assert not (tmp_path / "x.zip").exists() and not (tmp_path / "taken.zip.part").exists()
    await do_export(vault, access, tmp_path / "ok.zip", actor=STAFF, processors=[])
    with pytest.raises(ConflictError, match="completed"):
        await do_export(vault, access, tmp_path / "again.zip", actor=STAFF, processors=[])
