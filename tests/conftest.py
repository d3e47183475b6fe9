"""Shared fixtures.

Requirement markers: ``@pytest.mark.req("R-7.1")`` (registered in pyproject). Store tests run
against SQLite and, when ``VOICEDESK_TEST_DATABASE_URL`` is set, PostgreSQL too (each test in
its own schema). With ``VOICEDESK_CI=1`` a missing PostgreSQL fails instead of skipping.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from voicedesk.clock import FixedClock
from voicedesk.config import Settings
from voicedesk.store.session import Database
from voicedesk.store.vault import Vault

PG_URL = os.environ.get("VOICEDESK_TEST_DATABASE_URL")
IN_CI = os.environ.get("VOICEDESK_CI") == "1"
START = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not PG_URL:
        raise pytest.UsageError("VOICEDESK_CI=1 but VOICEDESK_TEST_DATABASE_URL is not set")


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgres" and not PG_URL:
        pytest.skip("VOICEDESK_TEST_DATABASE_URL not set")
    return name


@pytest.fixture
def master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
async def settings(backend: str, tmp_path: Path, master_key: str) -> AsyncIterator[Settings]:
    """Settings for a fresh, empty store on the chosen backend."""
    if backend == "sqlite":
        yield Settings(data_dir=tmp_path / "data", master_key=master_key, jobs_enabled=False, _env_file=None)
        return
    assert PG_URL is not None
    schema = f"vdt_{uuid.uuid4().hex[:10]}"
    yield Settings(data_dir=tmp_path / "data", master_key=master_key, database_url=PG_URL, database_schema=schema,
                   keystore_schema=f"{schema}_keys", jobs_enabled=False, _env_file=None)
    admin = Database.connect(PG_URL)
    async with admin.engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}_keys" CASCADE'))
    await admin.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
async def vault(settings: Settings, clock: FixedClock) -> AsyncIterator[Vault]:
    from voicedesk.bootstrap import open_vault

    v = await open_vault(settings, clock=clock)
    yield v
    await v.close()
