"""Reading the consent records of a call (R-4.2, R-14): what was decided, how, when, on which text.

A consent record names the announcement version the caller heard as
``"<text version id>:v<n>+q:v<m>"`` (announcement and, in ``ask`` mode, the consent question,
see ``calls.service.load_call_context``) and the SHA-256 of the exact text played. This
module resolves those versions to the stored texts (old versions stay readable) and checks
the hash against them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voicedesk.domain.errors import NotFoundError
from voicedesk.store.models import Call, Consent, TextVersion
from voicedesk.store.repos import calls as call_repo
from voicedesk.store.vault import Vault

_VERSION = re.compile(r"^(?P<id>[0-9a-fA-F-]{32,36}):v(?P<n>\d+)(?:\+q:v(?P<q>\d+))?$")


@dataclass(frozen=True)
class HeardText:
    """A versioned text as stored (announcement or consent question)."""

    kind: str
    language: str
    version: int
    sha256: str
    text: str
    created_at: dt.datetime


@dataclass(frozen=True)
class ConsentRecord:
    purpose: str
    decision: str
    method: str
    decided_at: dt.datetime
    text_version: str | None
    text_sha256: str | None
    reason: str | None
    hash_matches: bool | None  # None when the version cannot be resolved


@dataclass(frozen=True)
class CallConsents:
    call_id: uuid.UUID
    provider_call_id: str | None
    language: str
    records: list[ConsentRecord]
    heard: list[HeardText]


async def _resolve(session: AsyncSession, tenant_id: uuid.UUID, version: str | None) -> list[TextVersion]:
    m = _VERSION.match(version or "")
    if not m:
        return []
    try:
        announcement = await session.get(TextVersion, uuid.UUID(m.group("id")))
    except ValueError:
        return []
    if announcement is None or announcement.tenant_id != tenant_id:
        return []
    out = [announcement]
    if m.group("q"):
        question = (await session.scalars(select(TextVersion).where(
            TextVersion.tenant_id == tenant_id, TextVersion.kind == "consent_question",
            TextVersion.language == announcement.language, TextVersion.version == int(m.group("q"))))).first()
        if question is not None:
            out.append(question)
    return out


def _matches(texts: list[TextVersion], digest: str | None) -> bool | None:
    if not texts or not digest:
        return None
    candidates = {hashlib.sha256(texts[0].text.encode()).hexdigest()}
    if len(texts) > 1:
        candidates.add(hashlib.sha256(f"{texts[0].text}\n{texts[1].text}".encode()).hexdigest())
    return digest in candidates


async def list_call_consents(
    vault: Vault, call: str, *, actor: str, tenant_id: uuid.UUID | None = None
) -> CallConsents:
    """The consent records of a call given by voicedesk id or carrier id (Twilio ``CallSid``)."""
    async with vault.db.sessions() as session:
        row: Call | None
        try:
            row = await session.get(Call, uuid.UUID(call))
        except ValueError:
            row = await call_repo.get_call_by_provider_id(session, call)
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            raise NotFoundError("call not found")
        consents = (await session.scalars(select(Consent).where(Consent.tenant_id == row.tenant_id,
                                                                Consent.call_id == row.id)
                                          .order_by(Consent.decided_at, Consent.purpose))).all()
        records: list[ConsentRecord] = []
        heard: dict[uuid.UUID, TextVersion] = {}
        for c in consents:
            texts = await _resolve(session, row.tenant_id, c.text_version)
            heard.update({t.id: t for t in texts})
            records.append(ConsentRecord(c.purpose, c.decision, c.method, c.decided_at, c.text_version,
                                         c.text_sha256, c.reason, _matches(texts, c.text_sha256)))
        result = CallConsents(row.id, row.provider_call_id, row.language, records,
                              [HeardText(t.kind, t.language, t.version, t.sha256, t.text, t.created_at)
                               for t in heard.values()])
    await vault.audit.record(actor=actor, action="consent.read", tenant_id=row.tenant_id, object_type="call",
                             object_id=row.id, details={"count": len(records)})
    return result
