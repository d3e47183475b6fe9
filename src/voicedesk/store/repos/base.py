"""Tenant-scoped lookups shared by the repositories. Repositories never commit."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voicedesk.domain.errors import NotFoundError

T = TypeVar("T")


async def get_owned(session: AsyncSession, model: type[T], tenant_id: uuid.UUID, obj_id: Any) -> T:
    """Load ``model`` by id within ``tenant_id``; the same ``NotFoundError`` for missing and foreign."""
    try:
        key = obj_id if isinstance(obj_id, uuid.UUID) else uuid.UUID(str(obj_id))
    except ValueError:
        raise NotFoundError(f"{model.__name__.lower()} not found") from None
    pk = model.id  # type: ignore[attr-defined]
    tenant_col = model.tenant_id  # type: ignore[attr-defined]
    row = (await session.scalars(select(model).where(pk == key, tenant_col == tenant_id))).first()
    if row is None:
        raise NotFoundError(f"{model.__name__.lower()} not found")
    return row
