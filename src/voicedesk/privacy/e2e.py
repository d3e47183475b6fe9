"""End-to-end encrypted recordings (R-10.1, optional per tenant).

A tenant that sets an X25519 public key gets every new recording encrypted to it, so the
server stores recordings it can never read back: per recording an ephemeral X25519 key
pair is made, its private half is used once for the key agreement with the tenant's key
and then dropped; HKDF-SHA256 over the shared secret gives the AES-256-GCM key of the
blob. The blob itself uses the ordinary chunked format of ``store.blobs`` (truncation,
reordering and renaming are detected), with that key.

The ephemeral public key and a fingerprint of the tenant key travel in the blob name
(``<tenant>/recordings/<call>/<id>.e2e-<fp>-<ephemeral key>.pcm``); since every chunk's
associated data binds the name, they are authenticated too, and no column is needed.
``voicedesk decrypt --private-key FILE RECORDING`` (or, later, the browser) reads one back
with the tenant's private key.

Crypto-shredding does not reach these blobs (they are not under a subject's data key):
erasure and retention delete their files.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from voicedesk.domain.errors import InvalidInputError
from voicedesk.store.blobs import BlobStore, FileBlobStore
from voicedesk.store.models import Tenant
from voicedesk.store.vault import Vault

__all__ = [
    "E2ERecordingKeys",
    "E2ERecordingTarget",
    "decrypt_recording",
    "do_set_e2e_key",
    "generate_keypair",
    "is_e2e_blob",
    "key_fingerprint",
    "load_private_key",
    "load_public_key",
    "read_recording_file",
    "recording_key",
    "recording_keys_for",
    "write_wav",
]

_INFO = b"voicedesk e2e recording v1|"
_NAME = re.compile(r"\.e2e-(?P<fp>[0-9a-f]{16})-(?P<epk>[A-Za-z0-9_-]{43})\.[a-z0-9]+$")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def key_fingerprint(public_key: bytes) -> str:
    """A short, stable name of a tenant's public key (16 hex digits of its SHA-256)."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def _raw_or_base64(data: bytes) -> bytes | None:
    if len(data) == 32:
        return data
    try:
        decoded = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if len(decoded) == 32 else None


def load_public_key(data: bytes) -> bytes:
    """The raw 32-byte X25519 public key from PEM, base64 or raw bytes; ``InvalidInputError`` otherwise."""
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError:
            raise InvalidInputError("not a PEM public key", field="public_key") from None
        if not isinstance(key, X25519PublicKey):
            raise InvalidInputError("the public key must be an X25519 key", field="public_key")
        return key.public_bytes_raw()
    raw = _raw_or_base64(data)
    if raw is None:
        raise InvalidInputError("an X25519 public key is 32 bytes (raw, base64 or PEM)", field="public_key")
    return X25519PublicKey.from_public_bytes(raw).public_bytes_raw()


def load_private_key(data: bytes) -> X25519PrivateKey:
    """An X25519 private key from PEM (PKCS#8), base64 or raw bytes; ``InvalidInputError`` otherwise."""
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise InvalidInputError("not an unencrypted PEM private key", field="private_key") from None
        if not isinstance(key, X25519PrivateKey):
            raise InvalidInputError("the private key must be an X25519 key", field="private_key")
        return key
    raw = _raw_or_base64(data)
    if raw is None:
        raise InvalidInputError("an X25519 private key is 32 bytes (raw, base64 or PEM)", field="private_key")
    return X25519PrivateKey.from_private_bytes(raw)


def generate_keypair() -> tuple[bytes, bytes]:
    """A new key pair as (private PEM, public PEM) — to be made where the private key will live."""
    private = X25519PrivateKey.generate()
    return (
        private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    )


def _derive(shared: bytes, ephemeral: bytes, recipient: bytes, blob_name: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient,
                info=_INFO + blob_name.encode()).derive(shared)


@dataclass(frozen=True)
class E2ERecordingTarget:
    """Where a new recording goes and the key its blob writer uses (forget it after ``close``)."""

    blob_name: str
    key: bytes = field(repr=False)


class E2ERecordingKeys:
    """Recording keys for a tenant in end-to-end mode; the call runtime's recording sink uses it.

    ``new_recording(tenant_id, call_id, recording_id)`` returns the blob name and the key to
    pass to ``vault.blobs.open_writer(name, key)``; the row gets ``Recording.e2e = True``.
    """

    def __init__(self, public_key: bytes) -> None:
        self.public_key = load_public_key(public_key)
        self._recipient = X25519PublicKey.from_public_bytes(self.public_key)
        self.fingerprint = key_fingerprint(self.public_key)

    def new_recording(
        self, tenant_id: uuid.UUID, call_id: uuid.UUID, recording_id: uuid.UUID, *, suffix: str = "pcm"
    ) -> E2ERecordingTarget:
        ephemeral = X25519PrivateKey.generate()
        epk = ephemeral.public_key().public_bytes_raw()
        name = f"{tenant_id}/recordings/{call_id}/{recording_id}.e2e-{self.fingerprint}-{_b64url(epk)}.{suffix}"
        key = _derive(ephemeral.exchange(self._recipient), epk, self.public_key, name)
        return E2ERecordingTarget(name, key)


def is_e2e_blob(blob_name: str) -> bool:
    return _NAME.search(blob_name) is not None


def recording_key(private_key: X25519PrivateKey, blob_name: str) -> bytes:
    """The blob key of an end-to-end recording, from the tenant's private key and the blob's name."""
    m = _NAME.search(blob_name)
    if m is None:
        raise InvalidInputError("not an end-to-end encrypted recording", field="recording")
    recipient = private_key.public_key().public_bytes_raw()
    if key_fingerprint(recipient) != m["fp"]:
        raise InvalidInputError("this private key does not belong to the key the recording was encrypted to",
                                field="private_key")
    epk = _unb64url(m["epk"])
    shared = private_key.exchange(X25519PublicKey.from_public_bytes(epk))
    return _derive(shared, epk, recipient, blob_name)


def decrypt_recording(blobs: BlobStore, blob_name: str, private_key: X25519PrivateKey) -> AsyncIterator[bytes]:
    """The plaintext chunks of a stored end-to-end recording."""
    return blobs.read(blob_name, recording_key(private_key, blob_name))


def read_recording_file(path: Path, private_key: X25519PrivateKey, *, name: str | None = None
                        ) -> AsyncIterator[bytes]:
    """Decrypt a blob file copied out of the store; its name is the last four path parts unless given."""
    blob_name = name or "/".join(path.parts[-4:])
    root = Path(str(path)[: -len(blob_name)]) if str(path).endswith(blob_name) else None
    if root is None:
        raise InvalidInputError("the blob file must keep its store path (tenant/recordings/call/file) or "
                                "pass its blob name", field="recording")
    return decrypt_recording(FileBlobStore(root), blob_name, private_key)


def write_wav(path: Path, pcm: bytes, *, sample_rate: int, channels: int = 1) -> int:
    """Write 16-bit PCM as a WAV file; returns the number of frames."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return len(pcm) // (2 * channels)


async def recording_keys_for(vault: Vault, tenant_id: uuid.UUID) -> E2ERecordingKeys | None:
    """The tenant's end-to-end recording keys, or None when the tenant has not switched the mode on."""
    async with vault.db.sessions() as s:
        tenant = await s.get(Tenant, tenant_id)
    if tenant is None or not tenant.e2e_public_key:
        return None
    return E2ERecordingKeys(tenant.e2e_public_key)


async def do_set_e2e_key(vault: Vault, tenant_id: uuid.UUID, public_key: bytes | None, *, actor: str) -> str | None:
    """Switch end-to-end mode on (with the tenant's public key) or off (None); audited by fingerprint.

    Affects new recordings only; existing ones stay as they were written.
    """
    raw = load_public_key(public_key) if public_key is not None else None
    async with vault.db.transaction() as s:
        tenant = await s.get(Tenant, tenant_id)
        if tenant is None:
            raise InvalidInputError("no such tenant", field="tenant")
        tenant.e2e_public_key = raw
        tenant.updated_at = vault.clock.now()
    fp = key_fingerprint(raw) if raw else None
    await vault.audit.record(actor=actor, action="tenant.e2e_key_set" if raw else "tenant.e2e_key_cleared",
                             tenant_id=tenant_id, object_type="tenant", object_id=tenant_id,
                             details={"fingerprint": fp} if fp else {})
    return fp
