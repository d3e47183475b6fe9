"""End-to-end encrypted recordings: the server stores what it cannot read (R-10.1)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from tests.support.factories import make_tenant

from voicedesk.domain.errors import IntegrityError, InvalidInputError
from voicedesk.privacy.e2e import (
    E2ERecordingKeys,
    decrypt_recording,
    do_set_e2e_key,
    generate_keypair,
    is_e2e_blob,
    load_private_key,
    read_recording_file,
    recording_keys_for,
)
from voicedesk.store.models import AuditEntry
from voicedesk.store.repos.subjects import add_subject
from voicedesk.store.vault import Vault


def tone(seconds: float, rate: int = 8000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


async def write_e2e(vault: Vault, keys: E2ERecordingKeys, tenant_id: uuid.UUID, pcm: bytes) -> str:
    target = keys.new_recording(tenant_id, uuid.uuid4(), uuid.uuid4())
    writer = await vault.blobs.open_writer(target.blob_name, target.key)
    for i in range(0, len(pcm), 1600):
        await writer.write(pcm[i : i + 1600])
    await writer.close()
    return target.blob_name


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])


@pytest.mark.req("R-10.1")
async def test_recordings_are_encrypted_to_the_tenant_key_and_unreadable_by_the_server(vault: Vault) -> None:
    tenant = await make_tenant(vault)
    private_pem, public_pem = generate_keypair()
    assert await recording_keys_for(vault, tenant.id) is None
    fingerprint = await do_set_e2e_key(vault, tenant.id, public_pem, actor="test")
    keys = await recording_keys_for(vault, tenant.id)
    assert keys is not None and keys.fingerprint == fingerprint
    assert "key=" not in repr(keys.new_recording(tenant.id, uuid.uuid4(), uuid.uuid4()))

    pcm = tone(2.0)
    name = await write_e2e(vault, keys, tenant.id, pcm)
    assert is_e2e_blob(name)
    stored = (Path(getattr(vault.blobs, "root")) / name).read_bytes()  # noqa: B009 - FileBlobStore
    assert pcm[:4000] not in stored

    # Everything the server holds: its key ring (any subject's blob key), the tenant's public key.
    async with vault.db.transaction() as s:
        subject = await add_subject(s, vault.keys, tenant.id, now=vault.clock.now(), phone="+4917123456789")
    server_key = await vault.keys.blob_key(tenant.id, subject.key_id, name)
    with pytest.raises(IntegrityError):
        await read_all(vault.blobs.read(name, server_key))
    other_private, _ = generate_keypair()
    with pytest.raises(InvalidInputError):
        await read_all(decrypt_recording(vault.blobs, name, load_private_key(other_private)))

    # The tenant's private key reads it back, in the store or as a copied file.
    private = load_private_key(private_pem)
    assert await read_all(decrypt_recording(vault.blobs, name, private)) == pcm
    root = Path(getattr(vault.blobs, "root"))  # noqa: B009
    assert await read_all(read_recording_file(root / name, private)) == pcm

    # Renaming the blob (e.g. to swap in another ephemeral key) fails authentication.
    other = await write_e2e(vault, keys, tenant.id, tone(0.5))
    (root / other).write_bytes(stored)
    with pytest.raises(IntegrityError):
        await read_all(decrypt_recording(vault.blobs, other, private))

    async with vault.db.sessions() as s:
        entry = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "tenant.e2e_key_set"))).one()
    assert entry.details == {"fingerprint": fingerprint}
    assert "BEGIN" not in json.dumps(entry.details)

    await do_set_e2e_key(vault, tenant.id, None, actor="test")
    assert await recording_keys_for(vault, tenant.id) is None


@pytest.mark.req("R-10.1")
async def test_only_x25519_keys_are_accepted(vault: Vault) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    tenant = await make_tenant(vault)
    ec_pub = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for bad in (ec_pub, b"not a key", b"\x00" * 31):
        with pytest.raises(InvalidInputError):
            await do_set_e2e_key(vault, tenant.id, bad, actor="test")
