"""Versioned announcement and privacy-notice texts (R-14).

A change of a text creates a new version; old versions stay readable, and consent records
point at the exact version (id, number and SHA-256) the caller heard.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from voicedesk.domain.errors import NotFoundError
from voicedesk.domain.profile import TenantProfile
from voicedesk.store.models import TextVersion

TEXT_KINDS = ("announcement", "consent_question", "privacy_notice")


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _profile_texts(profile: TenantProfile) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for lang in profile.all_languages:
        out[("announcement", lang)] = profile.text(profile.announcement, lang)
        out[("consent_question", lang)] = profile.text(profile.consent_question, lang)
        out[("privacy_notice", lang)] = profile.text(profile.privacy_notice, lang).replace("{name}", profile.name)
    return out


async def current_text(session: AsyncSession, tenant_id: uuid.UUID, kind: str, language: str) -> TextVersion:
    q = (select(TextVersion).where(TextVersion.tenant_id == tenant_id, TextVersion.kind == kind,
                                   TextVersion.language == language)
         .order_by(TextVersion.version.desc()).limit(1))
    row = (await session.scalars(q)).first()
    if row is None:
        raise NotFoundError(f"no {kind} text for language {language}")
    return row


async def list_versions(session: AsyncSession, tenant_id: uuid.UUID, kind: str | None = None) -> list[TextVersion]:
    q = select(TextVersion).where(TextVersion.tenant_id == tenant_id)
    if kind:
        q = q.where(TextVersion.kind == kind)
    return list((await session.scalars(q.order_by(TextVersion.kind, TextVersion.language, TextVersion.version))).all())


async def sync_text_versions(
    session: AsyncSession, tenant_id: uuid.UUID, profile: TenantProfile, now: dt.datetime
) -> list[TextVersion]:
    """Create a new version for every text of the profile that differs from its current version."""
    created = []
    for (kind, lang), text in _profile_texts(profile).items():
        digest = text_sha256(text)
        q = (select(TextVersion).where(TextVersion.tenant_id == tenant_id, TextVersion.kind == kind,
                                       TextVersion.language == lang).order_by(TextVersion.version.desc()).limit(1))
        latest = (await session.scalars(q)).first()
        if latest is not None and latest.sha256 == digest:
            continue
        n = await session.scalar(select(func.coalesce(func.max(TextVersion.version), 0)).where(
            TextVersion.tenant_id == tenant_id, TextVersion.kind == kind, TextVersion.language == lang))
        row = TextVersion(id=uuid.uuid4(), tenant_id=tenant_id, kind=kind, language=lang, version=int(n or 0) + 1,
                          text=text, sha256=digest, created_at=now)
        session.add(row)
        created.append(row)
    await session.flush()
    return created
