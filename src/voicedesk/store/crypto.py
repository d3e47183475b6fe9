"""Envelope encryption: master key (KEK) → tenant key → per-subject data keys (DEKs).

- Tenant keys are wrapped by the KEK; from each tenant key two keys are derived (HKDF):
  one wraps the tenant's DEKs, one keys the blind indexes.
- Field ciphertext = ``0x01 | key_id (16) | nonce (12) | AES-256-GCM(ct+tag)``; the
  associated data binds it to (tenant, table, row id, column), so a ciphertext copied into
  another row or column fails to decrypt.
- Destroying a DEK (``KeyRing.shred``) makes every field and blob of that subject unreadable.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import uuid
from collections import OrderedDict
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from voicedesk.domain.errors import ConfigError, ErasedError, IntegrityError
from voicedesk.domain.profile import normalize_e164
from voicedesk.store.keystore import KeyStore

VERSION = b"\x01"
_KEK_CHECK_PLAINTEXT = b"voicedesk-kek-check-v1"


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(blob[:12], blob[12:], aad)
    except InvalidTag:
        raise IntegrityError("ciphertext failed authentication (tampered, moved or wrong key)") from None


@dataclass(frozen=True)
class TenantKeys:
    wrap: bytes
    index: bytes
    signing: bytes


def field_aad(tenant_id: uuid.UUID, table: str, row_id: uuid.UUID | str, column: str, key_id: uuid.UUID) -> bytes:
    return f"v1|{tenant_id}|{table}|{row_id}|{column}|{key_id}".encode()


class KeyRing:
    """Holds the KEK and caches unwrapped keys; all key material access goes through here."""

    def __init__(self, kek: bytes, keystore: KeyStore, *, cache_size: int = 4096) -> None:
        if len(kek) != 32:
            raise ConfigError("master key must be 32 bytes")
        self._kek = kek
        self.keystore = keystore
        self._tenants: dict[uuid.UUID, TenantKeys] = {}
        self._deks: OrderedDict[uuid.UUID, bytes] = OrderedDict()
        self._cache_size = cache_size
        self.audit_key = _derive(kek, b"voicedesk audit chain")
        self.token_key = _derive(kek, b"voicedesk call tokens")

    # --- master key ---------------------------------------------------------------
    async def check_master_key(self, now: dt.datetime) -> None:
        """First use stores a check value; later a different KEK raises ``ConfigError``."""
        blob = await self.keystore.get_kek_check()
        if blob is None:
            await self.keystore.put_kek_check(seal(self._kek, _KEK_CHECK_PLAINTEXT, b"kek-check"), now)
            return
        try:
            ok = open_sealed(self._kek, blob, b"kek-check") == _KEK_CHECK_PLAINTEXT
        except IntegrityError:
            ok = False
        if not ok:
            raise ConfigError("the master key does not match this data (wrong VOICEDESK_MASTER_KEY or key file)")

    # --- tenant keys ----------------------------------------------------------------
    async def create_tenant(self, tenant_id: uuid.UUID, now: dt.datetime) -> None:
        key = os.urandom(32)
        await self.keystore.put_tenant_key(tenant_id, seal(self._kek, key, f"tenant|{tenant_id}".encode()), now)

    async def tenant(self, tenant_id: uuid.UUID) -> TenantKeys:
        cached = self._tenants.get(tenant_id)
        if cached:
            return cached
        wrapped = await self.keystore.get_tenant_key(tenant_id)
        if wrapped is None:
            raise ConfigError("no key for this tenant in the key store")
        key = open_sealed(self._kek, wrapped, f"tenant|{tenant_id}".encode())
        keys = TenantKeys(
            wrap=_derive(key, b"dek-wrap"), index=_derive(key, b"blind-index"), signing=_derive(key, b"signing")
        )
        self._tenants[tenant_id] = keys
        return keys

    # --- data keys ------------------------------------------------------------------
    async def new_data_key(self, tenant_id: uuid.UUID, now: dt.datetime) -> uuid.UUID:
        keys = await self.tenant(tenant_id)
        key_id = uuid.uuid4()
        dek = os.urandom(32)
        await self.keystore.put_data_key(key_id, tenant_id, seal(keys.wrap, dek, self._dek_aad(tenant_id, key_id)), now)
        self._remember(key_id, dek)
        return key_id

    async def data_key(self, tenant_id: uuid.UUID, key_id: uuid.UUID) -> bytes:
        dek = self._deks.get(key_id)
        if dek is not None:
            self._deks.move_to_end(key_id)
            return dek
        row = await self.keystore.get_data_key(key_id)
        if row is None or row[0] != tenant_id:
            raise ErasedError("this data was erased; its key no longer exists")
        keys = await self.tenant(tenant_id)
        dek = open_sealed(keys.wrap, row[1], self._dek_aad(tenant_id, key_id))
        self._remember(key_id, dek)
        return dek

    async def shred(
        self, tenant_id: uuid.UUID, subject_id: uuid.UUID, key_id: uuid.UUID, now: dt.datetime,
        request_id: str | None = None,
    ) -> None:
        """Destroy a subject's DEK for good and record it in the erasure ledger."""
        self._deks.pop(key_id, None)
        await self.keystore.destroy_data_key(
            tenant_id=tenant_id, subject_id=subject_id, key_id=key_id, now=now, request_id=request_id
        )

    def forget_cached(self, key_id: uuid.UUID) -> None:
        self._deks.pop(key_id, None)

    @staticmethod
    def _dek_aad(tenant_id: uuid.UUID, key_id: uuid.UUID) -> bytes:
        return f"dek|{tenant_id}|{key_id}".encode()

    def _remember(self, key_id: uuid.UUID, dek: bytes) -> None:
        self._deks[key_id] = dek
        if len(self._deks) > self._cache_size:
            self._deks.popitem(last=False)

    # --- fields -----------------------------------------------------------------------
    async def encrypt(
        self, tenant_id: uuid.UUID, key_id: uuid.UUID, value: str | bytes | None, *,
        table: str, row_id: uuid.UUID | str, column: str,
    ) -> bytes | None:
        if value is None:
            return None
        data = value.encode() if isinstance(value, str) else value
        dek = await self.data_key(tenant_id, key_id)
        return VERSION + key_id.bytes + seal(dek, data, field_aad(tenant_id, table, row_id, column, key_id))

    async def decrypt_bytes(
        self, tenant_id: uuid.UUID, blob: bytes | None, *, table: str, row_id: uuid.UUID | str, column: str
    ) -> bytes | None:
        if blob is None:
            return None
        if blob[:1] != VERSION or len(blob) < 1 + 16 + 12 + 16:
            raise IntegrityError("unknown ciphertext format")
        key_id = uuid.UUID(bytes=blob[1:17])
        dek = await self.data_key(tenant_id, key_id)
        return open_sealed(dek, blob[17:], field_aad(tenant_id, table, row_id, column, key_id))

    async def decrypt(
        self, tenant_id: uuid.UUID, blob: bytes | None, *, table: str, row_id: uuid.UUID | str, column: str
    ) -> str | None:
        data = await self.decrypt_bytes(tenant_id, blob, table=table, row_id=row_id, column=column)
        return None if data is None else data.decode()

    # --- blind indexes ------------------------------------------------------------------
    async def blind_index(self, tenant_id: uuid.UUID, kind: str, value: str) -> str:
        """HMAC of a normalised identifier: phone numbers as E.164, e-mails lower-cased."""
        keys = await self.tenant(tenant_id)
        return hmac.new(keys.index, f"{kind}|{normalize_identifier(kind, value)}".encode(), hashlib.sha256).hexdigest()

    # --- blob keys ------------------------------------------------------------------------
    async def blob_key(self, tenant_id: uuid.UUID, key_id: uuid.UUID, blob_id: str) -> bytes:
        dek = await self.data_key(tenant_id, key_id)
        return _derive(dek, f"blob|{blob_id}".encode())

    def sign(self, key: bytes, message: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode().rstrip("=")


def normalize_identifier(kind: str, value: str) -> str:
    if kind == "phone":
        return normalize_e164(value)
    if kind == "email":
        return value.strip().lower()
    return value.strip()
