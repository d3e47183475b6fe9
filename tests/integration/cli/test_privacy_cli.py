"""``voicedesk dsar …`` and ``voicedesk consent show`` as real processes (``python -m voicedesk``).

One person is seeded in-process through the same services a live call uses; the commands
then run against the same data dir (SQLite, or PostgreSQL in its own schema when the suite
runs with ``VOICEDESK_TEST_DATABASE_URL``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from tests.conftest import START
from tests.integration.privacy.dsar_seed import ALICE, Seeded, seed_person, thursday

from voicedesk.bootstrap import open_vault
from voicedesk.clock import FixedClock
from voicedesk.config import Settings
from voicedesk.store.repos.tenants import require_tenant_by_slug

pytestmark = pytest.mark.slow


def _env(settings: Settings) -> dict[str, str]:
    assert settings.master_key is not None
    env = {**os.environ, "VOICEDESK_DATA_DIR": str(settings.data_dir), "VOICEDESK_JOBS_ENABLED": "false",
           "VOICEDESK_MASTER_KEY": settings.master_key.get_secret_value(), "NO_COLOR": "1", "COLUMNS": "250"}
    for name in ("VOICEDESK_TWILIO_ACCOUNT_SID", "VOICEDESK_TWILIO_AUTH_TOKEN", "VOICEDESK_SMTP_HOST"):
        env.pop(name, None)
    if settings.database_url:
        env["VOICEDESK_DATABASE_URL"] = settings.database_url
        env["VOICEDESK_DATABASE_SCHEMA"] = settings.database_schema or ""
        env["VOICEDESK_KEYSTORE_SCHEMA"] = settings.keystore_schema
    return env


def _vd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "voicedesk", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def _ok(env: dict[str, str], *args: str) -> str:
    done = _vd(env, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


async def _seed(settings: Settings, env: dict[str, str]) -> Seeded:
    _ok(env, "init", "--demo")
    vault = await open_vault(settings, clock=FixedClock(START))
    try:
        async with vault.db.sessions() as s:
            tenant = await require_tenant_by_slug(s, "praxis-mueller")
        return await seed_person(vault, tenant, ALICE, slot=thursday(9))
    finally:
        await vault.close()


@pytest.mark.req("R-8.7")
@pytest.mark.req("R-8.1")
@pytest.mark.req("R-8.3")
@pytest.mark.req("R-14")
async def test_dsar_commands_from_request_to_export_and_erasure(settings: Settings, tmp_path: Path) -> None:
    env = _env(settings)
    alice = await _seed(settings, env)

    shown = _ok(env, "consent", "show", "--call", alice.call_sid)
    assert f"call {alice.call_id}" in shown and "recording" in shown and "granted" in shown and "key" in shown
    assert "yes" in shown, "the stored hash matches the versioned text"
    assert "announcement de v1" in shown and "KI-Assistenten" in shown and "consent_question de v1" in shown
    assert _ok(env, "consent", "show", "--call", str(alice.call_id)).splitlines()[0] == shown.splitlines()[0]

    request_id = _ok(env, "dsar", "create", "--tenant", "praxis-mueller", "--type", "access", "--phone",
                     ALICE.phone).splitlines()[0].strip()
    out = tmp_path / "auskunft.zip"
    error = _one_line_error(_vd(env, "dsar", "export", request_id, "--out", str(out)))
    assert "verify the identity first" in error and not out.exists()
    assert "SMS is not configured" in _one_line_error(_vd(env, "dsar", "verify", request_id, "--send"))
    _one_line_error(_vd(env, "dsar", "verify", request_id))
    assert "identity verified" in _ok(env, "dsar", "verify", request_id, "--staff")
    assert "wrote" in _ok(env, "dsar", "export", request_id, "--out", str(out))
    with zipfile.ZipFile(out) as zf:
        doc = json.loads(zf.read("data.json"))
        assert {"statement.md", "statement.html", "schema.json", "csv/calls.csv"} <= set(zf.namelist())
    assert doc["contact"]["last_name"] == ALICE.last and doc["calls"][0]["provider_call_id"] == alice.call_sid
    status = json.loads(_ok(env, "dsar", "status", request_id, "--json"))
    assert (status["state"], status["verification_method"], status["kind"]) == ("completed", "staff", "access")
    listing = _ok(env, "dsar", "status", "--tenant", "praxis-mueller")
    assert request_id in listing and alice.dsar_id in listing

    erase_id = _ok(env, "dsar", "create", "--tenant", "praxis-mueller", "--type", "erasure", "--email",
                   ALICE.email).splitlines()[0].strip()
    _ok(env, "dsar", "verify", erase_id, "--staff")
    erased = _ok(env, "dsar", "erase", erase_id)
    assert "key destroyed" in erased and "calls 1" in erased
    assert "call not found" in _one_line_error(_vd(env, "consent", "show", "--call", alice.call_sid))
    assert "not found" in _one_line_error(_vd(env, "dsar", "status", "00000000-0000-0000-0000-000000000000"))
    assert "0 people removed again" in _ok(env, "dsar", "replay-ledger")
    audit = _ok(env, "audit", "verify")
    assert "intact" in audit
    for text in (shown, listing, erased):
        assert ALICE.phone not in text and ALICE.email not in text
