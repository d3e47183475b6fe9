"""Keyword-only factories that return persisted rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voicedesk.domain.profile import TenantProfile, parse_profile
from voicedesk.store.models import Tenant
from voicedesk.store.vault import Vault
from voicedesk.tenancy.service import do_create_tenant, load_profile_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def demo_profile(slug: str = "praxis-mueller", **overrides: Any) -> TenantProfile:
    base = load_profile_file(EXAMPLES / f"{slug}.yaml").model_dump(mode="json")
    base.update(overrides)
    return parse_profile(base)


async def make_tenant(vault: Vault, *, slug: str = "praxis-mueller", **overrides: Any) -> Tenant:
    """A demo tenant; pass ``new_slug``/numbers via overrides to make a second one."""
    profile = demo_profile(slug, **overrides)
    return await do_create_tenant(vault, profile, actor="test")
