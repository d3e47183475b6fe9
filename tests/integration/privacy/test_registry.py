"""The processor registry: derived from the configuration, EU-only status, announcements, AI models."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.support.factories import make_tenant

from voicedesk.clock import FixedClock
from voicedesk.config import Settings
from voicedesk.privacy.registry import (
    Zone,
    ai_models,
    announce_new_processors,
    build_registry,
    do_object_to_processor,
    eu_only_status,
    processor_status,
)
from voicedesk.store.models import AuditEntry, ProcessorNotice
from voicedesk.store.repos.tenants import profile_of
from voicedesk.store.vault import Vault
from voicedesk.telephony.twilio.rest import PROCESSOR as TWILIO_PROCESSOR

SID = "AC" + "0" * 32


def conf(tmp_path: Path, **kw: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", _env_file=None, **kw)


@dataclass
class FakeMailer:
    sent: list[tuple[str, str, str]] = field(default_factory=list)

    async def send(self, *, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject, body))


@pytest.mark.req("R-6.1")
@pytest.mark.req("R-5.2")
def test_local_engines_are_not_processors_and_are_eu_only(tmp_path: Path) -> None:
    settings = conf(tmp_path, eu_only=True, llm_base_url="http://127.0.0.1:8080/v1", smtp_host="localhost")
    assert build_registry(settings) == []
    ok, reasons = eu_only_status(settings)
    assert ok
    assert reasons[0].startswith("EU-only")
    assert any("local Whisper" in r for r in reasons) and any("rule engine" in r for r in reasons)
    local_llm = conf(tmp_path, dialogue_engine="llm", llm_base_url="http://10.0.0.5:8000/v1", llm_model="qwen")
    assert build_registry(local_llm) == [] and eu_only_status(local_llm)[0]


@pytest.mark.req("R-6.1")
@pytest.mark.req("R-5.2")
def test_twilio_region_decides_the_location(tmp_path: Path) -> None:
    us = conf(tmp_path, twilio_account_sid=SID, eu_only=True)
    [twilio] = build_registry(us, declarations={"twilio": TWILIO_PROCESSOR})
    assert twilio.name == TWILIO_PROCESSOR["name"] and twilio.zone is Zone.THIRD_COUNTRY
    assert "USA" in twilio.location and "Data Privacy Framework" in twilio.transfer_safeguard
    assert twilio.data_categories == tuple(TWILIO_PROCESSOR["data_categories"])  # type: ignore[arg-type]
    assert any(d.startswith("https://www.twilio.com") for d in twilio.safeguard_documents)
    ok, reasons = eu_only_status(us)
    assert not ok and "VOICEDESK_EU_ONLY is set" in reasons[0] and "Twilio" in reasons[0]

    edge_only = conf(tmp_path, twilio_account_sid=SID, twilio_edge="frankfurt")
    assert build_registry(edge_only)[0].zone is Zone.THIRD_COUNTRY  # an edge is not a region

    eu = conf(tmp_path, twilio_account_sid=SID, twilio_region="ie1", twilio_edge="dublin", eu_only=True)
    [twilio_eu] = build_registry(eu)
    assert twilio_eu.zone is Zone.EU and "Ireland" in twilio_eu.location
    assert eu_only_status(eu)[0]


@pytest.mark.req("R-6.1")
@pytest.mark.req("R-5.2")
@pytest.mark.req("R-12.1")
def test_llm_and_smtp_locations(tmp_path: Path) -> None:
    openai = conf(tmp_path, dialogue_engine="llm", llm_base_url="https://api.openai.com/v1", llm_model="gpt-4o-mini")
    [llm] = build_registry(openai)
    assert llm.key == "llm:api.openai.com" and llm.zone is Zone.THIRD_COUNTRY and llm.no_training
    mistral = conf(tmp_path, dialogue_engine="llm", llm_base_url="https://api.mistral.ai/v1", llm_model="m")
    assert build_registry(mistral)[0].zone is Zone.EU and eu_only_status(mistral)[0]
    unknown = conf(tmp_path, dialogue_engine="llm", llm_base_url="https://llm.example.net/v1", llm_model="x")
    assert build_registry(unknown)[0].zone is Zone.UNKNOWN
    ok, reasons = eu_only_status(unknown)
    assert not ok and any("location unknown" in r for r in reasons)
    smtp = conf(tmp_path, smtp_host="mail.example.com")
    [relay] = build_registry(smtp)
    assert relay.key == "smtp:mail.example.com" and relay.zone is Zone.UNKNOWN

    models = ai_models(openai)
    dialogue = [m for m in models if m.purpose == "dialogue"]
    assert dialogue[0].model == "gpt-4o-mini" and dialogue[0].runs == "USA"
    assert not any(m.trained_on_conversations for m in models)


@pytest.mark.req("R-5.2")
def test_attached_safeguard_documents_are_listed(tmp_path: Path) -> None:
    settings = conf(tmp_path, twilio_account_sid=SID)
    folder = settings.data_dir / "safeguards" / "twilio"
    folder.mkdir(parents=True)
    (folder / "twilio-dpa-signed.pdf").write_bytes(b"%PDF-1.4")
    [twilio] = build_registry(settings)
    assert str(folder / "twilio-dpa-signed.pdf") in twilio.safeguard_documents


@pytest.mark.req("R-5.2")
@pytest.mark.req("R-12.1")
async def test_new_processors_are_announced_30_days_ahead(vault: Vault, clock: FixedClock, tmp_path: Path) -> None:
    a = await make_tenant(vault)
    b = await make_tenant(vault, slug="harbor-auto")
    mailer = FakeMailer()
    base = conf(tmp_path, twilio_account_sid=SID, twilio_region="ie1")
    first = await announce_new_processors(vault, base, clock.now(), mailer=mailer)
    assert {(x.tenant_slug, x.processor, x.kind) for x in first} == {
        ("praxis-mueller", "twilio", "baseline"), ("harbor-auto", "twilio", "baseline")}
    assert mailer.sent == [] and await processor_status(vault, a.id, "twilio", clock.now()) == "active"
    assert await announce_new_processors(vault, base, clock.now(), mailer=mailer) == []  # nothing changed

    with_llm = conf(tmp_path, twilio_account_sid=SID, twilio_region="ie1", dialogue_engine="llm",
                    llm_base_url="https://api.mistral.ai/v1", llm_model="mistral-small")
    second = await announce_new_processors(vault, with_llm, clock.now(), mailer=mailer)
    assert [(x.processor, x.kind) for x in second] == [("llm:api.mistral.ai", "announced")] * 2
    assert second[0].effective_at == clock.now() + dt.timedelta(days=30)
    controller = profile_of(a).controller
    assert controller is not None and controller.email
    assert any(to == controller.email and "Mistral" in subject and "widersprechen" in body
               for to, subject, body in mailer.sent)
    assert any("object" in body for _, _, body in mailer.sent)  # the English-speaking tenant
    assert await processor_status(vault, a.id, "llm:api.mistral.ai", clock.now()) == "pending"
    await do_object_to_processor(vault, b.id, "llm:api.mistral.ai", actor="test")
    clock.advance(dt.timedelta(days=30))
    assert await processor_status(vault, a.id, "llm:api.mistral.ai", clock.now()) == "active"
    assert await processor_status(vault, b.id, "llm:api.mistral.ai", clock.now()) == "objected"

    third = await announce_new_processors(vault, base, clock.now(), mailer=mailer)
    assert {(x.processor, x.kind) for x in third} == {("llm:api.mistral.ai", "removed")}
    async with vault.db.sessions() as s:
        notices = (await s.scalars(select(ProcessorNotice.processor))).all()
        entries = (await s.scalars(select(AuditEntry).where(AuditEntry.action.like("processor.%"))
                                   .order_by(AuditEntry.seq))).all()
    assert sorted(notices) == ["twilio", "twilio"]
    assert [e.action for e in entries].count("processor.announce") == 2
    assert [e.action for e in entries].count("processor.remove") == 2
    assert "processor.object" in [e.action for e in entries]
    assert all("@" not in json.dumps(e.details) for e in entries)
