"""Dashboard users and API keys (hashed, scoped, revocable)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from voicedesk.domain.errors import AuthenticationError, ConflictError, InvalidInputError
from voicedesk.store.models import ApiKey, User
from voicedesk.store.repos.base import get_owned

Role = Literal["owner", "admin", "staff", "viewer", "dpo"]
ROLES: tuple[Role, ...] = ("owner", "admin", "staff", "viewer", "dpo")
SCOPES = ("calls:read", "calls:write", "appointments:read", "appointments:write", "privacy:admin", "admin")

_hasher = PasswordHasher()  # argon2id with the library's current defaults


def hash_password(password: str) -> str:
    if len(password) < 12:
        raise InvalidInputError("password must have at least 12 characters", field="password")
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def add_user(
    session: AsyncSession, tenant_id: uuid.UUID, *, email: str, role: Role, password: str, now: dt.datetime
) -> User:
    if role not in ROLES:
        raise InvalidInputError(f"role must be one of {', '.join(ROLES)}", field="role")
    email = email.strip().lower()
    exists = (await session.scalars(select(User).where(User.tenant_id == tenant_id, User.email == email))).first()
    if exists:
        raise ConflictError("a user with this e-mail exists", field="email")
    user = User(id=uuid.uuid4(), tenant_id=tenant_id, email=email, role=role,
                password_hash=hash_password(password), created_at=now)
    session.add(user)
    await session.flush()
    return user


def _hash_secret(secret: str) -> str:
    # API key secrets are 256-bit random, so a fast hash is safe (no guessing to slow down).
    return hashlib.sha256(secret.encode()).hexdigest()


async def add_api_key(
    session: AsyncSession, tenant_id: uuid.UUID, *, name: str, scopes: list[str], now: dt.datetime
) -> tuple[ApiKey, str]:
    """Create a key; the returned token ``vd_<prefix>_<secret>`` is shown once and never stored."""
    unknown = set(scopes) - set(SCOPES)
    if unknown:
        raise InvalidInputError(f"unknown scopes {sorted(unknown)}", field="scopes")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(id=uuid.uuid4(), tenant_id=tenant_id, name=name, prefix=prefix, secret_hash=_hash_secret(secret),
                 scopes=sorted(scopes), created_at=now)
    session.add(key)
    await session.flush()
    return key, f"vd_{prefix}_{secret}"


async def authenticate_api_key(session: AsyncSession, token: str, now: dt.datetime) -> ApiKey:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "vd":
        raise AuthenticationError("invalid API key")
    key = (await session.scalars(select(ApiKey).where(ApiKey.prefix == parts[1]))).first()
    if key is None or key.revoked_at is not None or not hmac.compare_digest(key.secret_hash, _hash_secret(parts[2])):
        raise AuthenticationError("invalid API key")
    key.last_used_at = now
    return key


async def revoke_api_key(session: AsyncSession, tenant_id: uuid.UUID, key_id: uuid.UUID, now: dt.datetime) -> None:
    key = await get_owned(session, ApiKey, tenant_id, key_id)
    key.revoked_at = now


async def list_api_keys(session: AsyncSession, tenant_id: uuid.UUID) -> list[ApiKey]:
    return list((await session.scalars(select(ApiKey).where(ApiKey.tenant_id == tenant_id)
                                       .order_by(ApiKey.created_at))).all())
