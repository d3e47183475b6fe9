"""Tenants and the business numbers that route to them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from voicedesk.domain.errors import ConflictError, NotFoundError
from voicedesk.domain.profile import TenantProfile, parse_profile
from voicedesk.store.models import PhoneNumber, Tenant


def profile_of(tenant: Tenant) -> TenantProfile:
    return parse_profile(tenant.profile)


async def add_tenant(session: AsyncSession, profile: TenantProfile, now: dt.datetime) -> Tenant:
    if await get_tenant_by_slug(session, profile.slug) is not None:
        raise ConflictError(f"a tenant with slug {profile.slug!r} exists", field="slug")
    tenant = Tenant(id=uuid.uuid4(), slug=profile.slug, name=profile.name,
                    profile=profile.model_dump(mode="json"), created_at=now, updated_at=now)
    session.add(tenant)
    await session.flush()
    await set_numbers(session, tenant, profile)
    return tenant


async def set_numbers(session: AsyncSession, tenant: Tenant, profile: TenantProfile) -> None:
    await session.execute(delete(PhoneNumber).where(PhoneNumber.tenant_id == tenant.id))
    for number in profile.twilio_numbers:
        taken = await session.get(PhoneNumber, number)
        if taken is not None:
            raise ConflictError("a Twilio number of this profile already routes to another tenant",
                                field="twilio_numbers")
        session.add(PhoneNumber(number=number, tenant_id=tenant.id, language=profile.language_for_number(number)))
    await session.flush()


async def update_profile(session: AsyncSession, tenant: Tenant, profile: TenantProfile, now: dt.datetime) -> None:
    tenant.profile = profile.model_dump(mode="json")
    tenant.name = profile.name
    tenant.updated_at = now
    await set_numbers(session, tenant, profile)


async def get_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    return (await session.scalars(select(Tenant).where(Tenant.slug == slug))).first()


async def get_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFoundError("tenant not found")
    return tenant


async def require_tenant_by_slug(session: AsyncSession, slug: str) -> Tenant:
    tenant = await get_tenant_by_slug(session, slug)
    if tenant is None:
        raise NotFoundError(f"no tenant with slug {slug!r}")
    return tenant


async def get_tenant_by_number(session: AsyncSession, number: str) -> tuple[Tenant, str] | None:
    """The tenant a called number routes to, and the number's language."""
    row = await session.get(PhoneNumber, number)
    if row is None:
        return None
    return await get_tenant(session, row.tenant_id), row.language


async def list_tenants(session: AsyncSession) -> list[Tenant]:
    return list((await session.scalars(select(Tenant).order_by(Tenant.slug))).all())


def tenant_summary(tenant: Tenant) -> dict[str, Any]:
    p = profile_of(tenant)
    return {"slug": tenant.slug, "name": tenant.name, "language": p.language,
            "numbers": p.twilio_numbers, "consent_mode": p.consent_mode}
