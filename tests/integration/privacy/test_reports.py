"""Art. 30 record and DPIA input follow the running configuration (R-10.7, R-5.2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.factories import make_tenant

from voicedesk.config import Settings
from voicedesk.privacy.e2e import do_set_e2e_key, generate_keypair
from voicedesk.privacy.holds import do_add_legal_hold
from voicedesk.privacy.reports import art30_record, dpia_input, render
from voicedesk.store.repos.subjects import add_subject
from voicedesk.store.vault import Vault


@pytest.mark.req("R-10.7")
async def test_dpia_input_reflects_the_measures_in_force(vault: Vault, tmp_path: Path) -> None:
    tenant = await make_tenant(vault)
    plain = Settings(data_dir=tmp_path, _env_file=None)
    doc = render(await dpia_input(vault, plain, tenant.id))
    for heading in ("## Data map", "## Risks and measures", "## Measures in force", "## AI models in use"):
        assert heading in doc
    assert "End-to-end encryption of recordings to a tenant-held key: off." in doc
    assert "EU-only: yes" in doc and "Legal holds in force: 0." in doc
    assert "recordings 90 days" in doc and "call metadata 12 months" in doc and "logs 90 days" in doc
    assert "intact." in doc and "Consent mode: ask" in doc

    _, pub = generate_keypair()
    await do_set_e2e_key(vault, tenant.id, pub, actor="test")
    async with vault.db.transaction() as s:
        subject = await add_subject(s, vault.keys, tenant.id, now=vault.clock.now(), phone="+4917123456789")
    await do_add_legal_hold(vault, tenant.id, subject_id=subject.id, reason="§ 257 HGB", actor="test")
    us = Settings(data_dir=tmp_path, _env_file=None, twilio_account_sid="AC" + "2" * 32, dialogue_engine="llm",
                  llm_base_url="https://api.openai.com/v1", llm_model="gpt-4o-mini")
    doc = render(await dpia_input(vault, us, tenant.id))
    assert "on (the server cannot read new recordings)" in doc and "Legal holds in force: 1." in doc
    assert "EU-only: no." in doc and "Twilio Inc." in doc and "OpenAI" in doc and "gpt-4o-mini" in doc
    assert "encrypted blob files, end-to-end to the tenant's key" in doc
    assert "+4917123456789" not in doc and "257 HGB" not in doc


@pytest.mark.req("R-5.2")
@pytest.mark.req("R-10.7")
async def test_art30_record_in_markdown_and_escaped_html(vault: Vault, tmp_path: Path) -> None:
    tenant = await make_tenant(vault, name="Praxis <Müller> & Partner")
    settings = Settings(data_dir=tmp_path, _env_file=None, twilio_account_sid="AC" + "3" * 32,
                        twilio_region="ie1", smtp_host="mail.example.com")
    doc = await art30_record(vault, settings, tenant.id)
    md = render(doc, "md")
    assert md.startswith("# Record of processing activities (Art. 30 GDPR)")
    assert "| processing activity | legal basis |" in md and "Art. 6(1)(a) GDPR" in md
    assert "Twilio Inc." in md and "E-mail relay mail.example.com" in md and "Ireland" in md
    page = render(doc, "html")
    assert "Praxis &lt;Müller&gt; &amp; Partner" in page and "<Müller>" not in page
    assert "<script" not in page and "src=" not in page
