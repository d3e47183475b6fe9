"""Encrypted blob files: streamed, authenticated per chunk, bound to their name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from voicedesk.domain.errors import IntegrityError
from voicedesk.store.blobs import CHUNK, FileBlobStore

KEY = os.urandom(32)


async def _write(store: FileBlobStore, name: str, data: bytes) -> None:
    w = await store.open_writer(name, KEY)
    for i in range(0, len(data), 999):
        await w.write(data[i : i + 999])
    assert await w.close() == len(data)


async def _read(store: FileBlobStore, name: str, key: bytes = KEY) -> bytes:
    return b"".join([c async for c in store.read(name, key)])


@pytest.mark.req("R-10.1")
async def test_round_trip_and_tamper_detection(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    data = os.urandom(CHUNK * 3 + 17)
    await _write(store, "t/a.bin", data)
    assert await _read(store, "t/a.bin") == data
    raw = (tmp_path / "t/a.bin").read_bytes()
    (tmp_path / "t/b.bin").write_bytes(raw)  # renamed copy
    with pytest.raises(IntegrityError):
        await _read(store, "t/b.bin")
    (tmp_path / "t/a.bin").write_bytes(raw[: len(raw) - 40])  # truncated
    with pytest.raises(IntegrityError):
        await _read(store, "t/a.bin")
    flipped = bytearray(raw)
    flipped[100] ^= 1
    (tmp_path / "t/a.bin").write_bytes(bytes(flipped))
    with pytest.raises(IntegrityError):
        await _read(store, "t/a.bin")
    (tmp_path / "t/a.bin").write_bytes(raw)
    with pytest.raises(IntegrityError):
        await _read(store, "t/a.bin", os.urandom(32))


async def test_dropping_whole_final_chunk_is_detected(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    await _write(store, "x.bin", b"a" * CHUNK * 2)
    raw = (tmp_path / "x.bin").read_bytes()
    record = 4 + CHUNK + 16
    (tmp_path / "x.bin").write_bytes(raw[: 12 + 2 * record])  # keep only the two full chunks
    with pytest.raises(IntegrityError):
        await _read(store, "x.bin")


async def test_abort_leaves_nothing(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    w = await store.open_writer("r.bin", KEY)
    await w.write(b"secret" * 20000)
    await w.abort()
    assert not await store.exists("r.bin")
