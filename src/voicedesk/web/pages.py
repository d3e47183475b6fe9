"""Public pages served by voicedesk: the tenants' privacy notices for callers (R-11.2).

No cookies, no scripts, no third-party assets (R-13).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from voicedesk.domain.profile import Language
from voicedesk.privacy.registry import build_registry
from voicedesk.privacy.statement import build_privacy_notice
from voicedesk.store.repos.tenants import profile_of, require_tenant_by_slug

router = APIRouter(tags=["public"])


@router.get("/privacy/{slug}", response_class=HTMLResponse)
async def privacy_notice(request: Request, slug: str, lang: Literal["de", "en"] | None = None) -> HTMLResponse:
    state = request.app.state.voicedesk
    vault = state.require_vault()
    async with vault.db.sessions() as session:
        profile = profile_of(await require_tenant_by_slug(session, slug))
    language: Language = lang or profile.language
    notice = build_privacy_notice(profile, build_registry(state.settings), language=language)
    headers = {"Cache-Control": "public, max-age=300",
               "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
    return HTMLResponse(notice.html(), headers=headers)
