"""The retention, report, e2e, decrypt and training commands as a user runs them."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
import wave
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from tests.support.factories import make_tenant

from voicedesk.clock import FixedClock
from voicedesk.config import Settings
from voicedesk.privacy.e2e import recording_keys_for
from voicedesk.store.models import Call, Recording, Tenant
from voicedesk.store.repos.subjects import add_subject
from voicedesk.store.vault import Vault


def env_of(settings: Settings, **extra: str) -> dict[str, str]:
    env = {"VOICEDESK_DATA_DIR": str(settings.data_dir), "VOICEDESK_JOBS_ENABLED": "false"}
    assert settings.master_key is not None
    env["VOICEDESK_MASTER_KEY"] = settings.master_key.get_secret_value()
    if settings.database_url:
        env["VOICEDESK_DATABASE_URL"] = settings.database_url
        env["VOICEDESK_DATABASE_SCHEMA"] = settings.database_schema or ""
        env["VOICEDESK_KEYSTORE_SCHEMA"] = settings.keystore_schema
    return {**env, **extra}


def vd(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VOICEDESK_")}
    return subprocess.run([sys.executable, "-m", "voicedesk", *args], env={**clean, **env, "NO_COLOR": "1",
                          "COLUMNS": "200"}, capture_output=True, text=True, timeout=120, check=False)


async def old_recording(vault: Vault, tenant: Tenant, started: dt.datetime) -> str:
    async with vault.db.transaction() as s:
        subject = await add_subject(s, vault.keys, tenant.id, now=started, phone="+4917123456789")
        call = Call(id=uuid.uuid4(), tenant_id=tenant.id, subject_id=subject.id, language="de", status="completed",
                    started_at=started)
        s.add(call)
    name = f"{tenant.id}/recordings/{call.id}/{uuid.uuid4()}.pcm"
    writer = await vault.blobs.open_writer(name, await vault.keys.blob_key(tenant.id, subject.key_id, name))
    await writer.write(b"\x00\x01" * 800)
    await writer.close()
    async with vault.db.transaction() as s:
        s.add(Recording(id=uuid.uuid4(), tenant_id=tenant.id, call_id=call.id, blob_key=name, created_at=started))
    return name


@pytest.mark.req("R-10.1")
async def test_e2e_key_and_decrypt_round_trip(vault: Vault, settings: Settings, tmp_path: Path) -> None:
    tenant = await make_tenant(vault)
    env = env_of(settings)
    priv, pub = tmp_path / "tenant.key", tmp_path / "tenant.pub"
    made = vd("e2e", "keygen", "--private-key", str(priv), "--public-key", str(pub), env=env)
    assert made.returncode == 0, made.stderr
    assert oct(priv.stat().st_mode & 0o777) == "0o600"
    on = vd("e2e", "set-key", "--tenant", "praxis-mueller", "--public-key", str(pub), env=env)
    assert on.returncode == 0 and "fingerprint" in on.stdout, on.stderr

    keys = await recording_keys_for(vault, tenant.id)
    assert keys is not None
    samples = 12_000  # 1.5 s at 8 kHz
    pcm = (np.sin(np.arange(samples) / 8) * 6000).astype("<i2").tobytes()
    call_id, rec_id = uuid.uuid4(), uuid.uuid4()
    async with vault.db.transaction() as s:
        s.add(Call(id=call_id, tenant_id=tenant.id, language="de", status="completed", started_at=vault.clock.now()))
    target = keys.new_recording(tenant.id, call_id, rec_id)
    writer = await vault.blobs.open_writer(target.blob_name, target.key)
    await writer.write(pcm)
    size = await writer.close()
    async with vault.db.transaction() as s:
        s.add(Recording(id=rec_id, tenant_id=tenant.id, call_id=call_id, blob_key=target.blob_name, e2e=True,
                        sample_rate=8000, size_bytes=size, duration_ms=1500, created_at=vault.clock.now()))

    out = tmp_path / "call.wav"
    res = vd("decrypt", "--private-key", str(priv), str(rec_id), "--out", str(out), env=env)
    assert res.returncode == 0, res.stderr
    with wave.open(str(out)) as w:
        assert (w.getnframes(), w.getframerate(), w.getnchannels()) == (samples, 8000, 1)
        assert w.readframes(samples) == pcm
    copied = vd("decrypt", "--private-key", str(priv), str(settings.blob_dir / target.blob_name), "--out",
                str(tmp_path / "copy.wav"), env=env)
    assert copied.returncode == 0, copied.stderr
    with wave.open(str(tmp_path / "copy.wav")) as w:
        assert w.getnframes() == samples

    other_priv = tmp_path / "other.key"
    vd("e2e", "keygen", "--private-key", str(other_priv), "--public-key", str(tmp_path / "other.pub"), env=env)
    wrong = vd("decrypt", "--private-key", str(other_priv), str(rec_id), "--out", str(tmp_path / "x.wav"), env=env)
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr and "does not belong" in wrong.stderr


@pytest.mark.req("R-7.2")
async def test_retention_run_dry_run_then_real(vault: Vault, settings: Settings, clock: FixedClock) -> None:
    tenant = await make_tenant(vault)
    name = await old_recording(vault, tenant, clock.now() - dt.timedelta(days=100))
    env = env_of(settings)
    dry = vd("retention", "run", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would be deleted" in dry.stdout and "recordings" in dry.stdout
    assert await vault.blobs.exists(name)
    # the subprocess uses the wall clock, which is later than the fixed test clock: still > 90 days
    real = vd("retention", "run", "--tenant", "praxis-mueller", env=env)
    assert real.returncode == 0, real.stderr
    assert not await vault.blobs.exists(name)
    async with vault.db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Recording)) == 0
    bad = vd("retention", "run", "--tenant", "nobody", env=env)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "no tenant" in bad.stderr


@pytest.mark.req("R-5.2")
@pytest.mark.req("R-10.7")
@pytest.mark.req("R-6.1")
async def test_reports_name_the_configured_processors(vault: Vault, settings: Settings, tmp_path: Path) -> None:
    await make_tenant(vault)
    twilio = {"VOICEDESK_TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "VOICEDESK_TWILIO_REGION": "ie1"}
    art30 = vd("report", "art30", "--tenant", "praxis-mueller", "--format", "html", "--out",
               str(tmp_path / "art30.html"), env=env_of(settings, **twilio))
    assert art30.returncode == 0, art30.stderr
    page = (tmp_path / "art30.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Twilio Inc." in page and "Ireland" in page
    assert "Art. 30" in page and "<table>" in page and "http" not in page.split("<body>")[0]
    dpia = vd("report", "dpia", "--tenant", "praxis-mueller", env=env_of(settings))
    assert dpia.returncode == 0, dpia.stderr
    assert "## Risks and measures" in dpia.stdout and "## Data map" in dpia.stdout
    assert "Twilio" not in dpia.stdout  # not configured in this run
    procs = vd("report", "processors", env=env_of(settings, **twilio, VOICEDESK_EU_ONLY="true"))
    assert procs.returncode == 0 and "EU-only" in procs.stdout and "not EU-only" not in procs.stdout
    us = vd("report", "processors", env=env_of(settings, VOICEDESK_TWILIO_ACCOUNT_SID="AC" + "1" * 32))
    assert "not EU-only" in us.stdout
    models = vd("report", "models", "--tenant", "praxis-mueller", env=env_of(settings))
    assert models.returncode == 0 and "Whisper" in models.stdout


@pytest.mark.req("R-12.1")
async def test_training_export_without_consent_is_empty(vault: Vault, settings: Settings, tmp_path: Path) -> None:
    tenant = await make_tenant(vault)
    await old_recording(vault, tenant, vault.clock.now())
    out = tmp_path / "train.jsonl"
    res = vd("training", "export", "--tenant", "praxis-mueller", "--out", str(out), env=env_of(settings))
    assert res.returncode == 0, res.stderr
    assert "0 calls" in res.stdout and out.read_text() == ""
