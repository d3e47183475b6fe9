"""The app factory: health, readiness, metrics, OpenAPI without CDN assets, error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from tests.support.engines import tone_engines

from voicedesk.config import Settings
from voicedesk.domain.errors import NotFoundError
from voicedesk.web.app import create_app


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, engines=tone_engines({}))

    @app.get("/_boom")
    async def boom() -> None:
        raise NotFoundError("call not found")

    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as c:
        yield c


async def test_health_ready_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "migrations": "ok", "key": "ok"}
    metrics = (await client.get("/metrics")).text
    for name in ("voicedesk_voice_to_voice_seconds", "voicedesk_turn_stage_seconds", "voicedesk_active_calls"):
        assert name in metrics


async def test_openapi_without_cdn_docs(client: httpx.AsyncClient) -> None:
    assert (await client.get("/openapi.json")).json()["info"]["title"] == "voicedesk"
    assert (await client.get("/docs")).status_code == 404


async def test_errors_map_to_stable_codes(client: httpx.AsyncClient) -> None:
    r = await client.get("/_boom")
    assert r.status_code == 404 and r.json() == {"code": "not_found", "msg": "call not found"}


def test_create_app_does_no_io_at_construction(tmp_path: object) -> None:
    app = create_app(Settings(data_dir="/nonexistent/never-created", master_key=None, _env_file=None))
    assert isinstance(app, FastAPI)


@pytest.mark.req("R-11.2")
async def test_privacy_notice_page_names_controller_rights_and_authority(settings: Settings) -> None:
    from tests.support.factories import make_tenant

    from voicedesk.bootstrap import open_vault

    setup = await open_vault(settings)
    await make_tenant(setup)
    await setup.close()
    app = create_app(settings, engines=tone_engines({}))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as c:
        de = await c.get("/privacy/praxis-mueller")
        en = await c.get("/privacy/praxis-mueller", params={"lang": "en"})
        missing = await c.get("/privacy/nobody-here")
    assert de.status_code == 200 and "text/html" in de.headers["content-type"]
    assert "set-cookie" not in de.headers
    for needle in ("Hausarztpraxis Dr. Müller", "Hessische Beauftragte", "Art. 15", "Art. 17", "Art. 77"):
        assert needle in de.text
    assert "Privacy notice for callers" in en.text and "supervisory authority" in en.text
    assert "90" in en.text  # the recording retention period
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
