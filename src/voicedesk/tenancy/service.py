"""Tenants and their users: create from a profile file, list, add users."""

from __future__ import annotations

import secrets
from pathlib import Path

import yaml

from voicedesk.domain.errors import ProfileError
from voicedesk.domain.profile import TenantProfile, parse_profile
from voicedesk.privacy.texts import sync_text_versions
from voicedesk.store.models import Tenant, User
from voicedesk.store.repos import tenants as tenant_repo
from voicedesk.store.repos import users as user_repo
from voicedesk.store.vault import Vault


def load_profile_file(path: Path) -> TenantProfile:
    """Read and validate a YAML profile; every problem becomes one ``ProfileError`` message."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProfileError(f"profile file {path} does not exist", field="profile") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ProfileError(f"profile file {path} is not valid YAML{where}", field="profile") from None
    if not isinstance(raw, dict):
        raise ProfileError(f"profile file {path} must contain a mapping of fields", field="profile")
    return parse_profile(raw)


async def do_create_tenant(vault: Vault, profile: TenantProfile, *, actor: str) -> Tenant:
    """Create the tenant, its key and its text versions; audited."""
    now = vault.clock.now()
    async with vault.db.transaction() as session:
        tenant = await tenant_repo.add_tenant(session, profile, now)
        await sync_text_versions(session, tenant.id, profile, now)
        await vault.keys.create_tenant(tenant.id, now)
    await vault.audit.record(actor=actor, action="tenant.create", tenant_id=tenant.id, object_type="tenant",
                             object_id=tenant.id)
    return tenant


async def do_update_tenant_profile(vault: Vault, slug: str, profile: TenantProfile, *, actor: str) -> Tenant:
    now = vault.clock.now()
    async with vault.db.transaction() as session:
        tenant = await tenant_repo.require_tenant_by_slug(session, slug)
        if profile.slug != slug:
            raise ProfileError("the profile's slug differs from the tenant's", field="slug")
        await tenant_repo.update_profile(session, tenant, profile, now)
        await sync_text_versions(session, tenant.id, profile, now)
    await vault.audit.record(actor=actor, action="tenant.update", tenant_id=tenant.id, object_type="tenant",
                             object_id=tenant.id)
    return tenant


async def do_create_user(
    vault: Vault, slug: str, *, email: str, role: user_repo.Role, password: str | None, actor: str
) -> tuple[User, str]:
    """Add a dashboard user; returns the user and the password (generated when not given)."""
    password = password or secrets.token_urlsafe(15)
    async with vault.db.transaction() as session:
        tenant = await tenant_repo.require_tenant_by_slug(session, slug)
        user = await user_repo.add_user(session, tenant.id, email=email, role=role, password=password,
                                        now=vault.clock.now())
    await vault.audit.record(actor=actor, action="user.create", tenant_id=tenant.id, object_type="user",
                             object_id=user.id, details={"role": role})
    return user, password


async def list_tenants(vault: Vault, *, actor: str) -> list[Tenant]:
    async with vault.db.sessions() as session:
        tenants = await tenant_repo.list_tenants(session)
    await vault.audit.record(actor=actor, action="tenant.list", details={"count": len(tenants)})
    return tenants
