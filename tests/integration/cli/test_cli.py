"""The CLI as a user runs it: a real process, one clear error line, no traceback."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.factories import EXAMPLES

PG_DOWN = "postgresql+asyncpg://postgres@127.0.0.1:1/test"


def vd(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env, "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "voicedesk", *args], env=full, capture_output=True, text=True,
                          timeout=timeout, check=False)


def assert_clean_failure(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert needle in result.stderr.replace("\n", " ")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"VOICEDESK_DATA_DIR": str(tmp_path / "data"), "VOICEDESK_JOBS_ENABLED": "false"}


def test_init_demo_then_tenant_list_and_audit_verify(env: dict[str, str], tmp_path: Path) -> None:
    first = vd("init", "--demo", env=env)
    assert first.returncode == 0, first.stderr
    assert "password:" in first.stdout
    key_file = tmp_path / "data" / "master.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    again = vd("init", "--demo", env=env)
    assert again.returncode == 0 and "password:" not in again.stdout
    listed = vd("tenant", "list", env=env)
    assert "praxis-mueller" in listed.stdout and "harbor-auto" in listed.stdout
    verified = vd("audit", "verify", env=env)
    assert verified.returncode == 0 and "intact" in verified.stdout


def test_invalid_profile_is_one_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    assert vd("init", env=env).returncode == 0
    bad = tmp_path / "bad.yaml"
    text = (EXAMPLES / "praxis-mueller.yaml").read_text().replace('mon: ["08:00-12:00", "14:00-18:00"]',
                                                                   'mon: ["18:00-08:00"]')
    bad.write_text(text.replace("timezone: Europe/Berlin", "timezone: Mars/Olympus"))
    result = vd("tenant", "create", "--profile", str(bad), env=env)
    assert_clean_failure(result, "invalid tenant profile")
    assert "timezone" in result.stderr and "opening_hours" in result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("slug: [unclosed\n")
    assert_clean_failure(vd("tenant", "create", "--profile", str(broken), env=env), "not valid YAML")


@pytest.mark.parametrize("command", ["doctor", "serve"])
def test_wrong_master_key_is_one_clear_error(env: dict[str, str], command: str) -> None:
    assert vd("init", env=env).returncode == 0
    wrong = base64.b64encode(os.urandom(32)).decode()
    result = vd(command, "--port", "0", env={**env, "VOICEDESK_MASTER_KEY": wrong}) if command == "serve" else \
        vd(command, env={**env, "VOICEDESK_MASTER_KEY": wrong})
    assert_clean_failure(result, "master key does not match")


@pytest.mark.parametrize("command", ["doctor", "serve"])
def test_unreachable_database_is_one_clear_error(env: dict[str, str], command: str) -> None:
    assert vd("init", env=env).returncode == 0
    result = vd(command, env={**env, "VOICEDESK_DATABASE_URL": PG_DOWN})
    assert_clean_failure(result, "database unreachable")


def test_malformed_master_key_is_one_clear_error(env: dict[str, str]) -> None:
    result = vd("doctor", env={**env, "VOICEDESK_MASTER_KEY": "not-base64!"})
    assert_clean_failure(result, "not valid base64")
