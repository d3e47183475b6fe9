"""Encrypted blobs (recordings, exports) as streamed, chunked AEAD files.

File format: ``b"VDB1" | nonce_prefix (8)`` then records ``len (4, big endian) | AES-256-GCM``
of at most ``CHUNK`` plaintext bytes. Record *i* uses nonce ``prefix | i`` and associated
data ``name | i | final``; the last record has ``final = 1`` so a truncated file, reordered
records or a blob renamed to another name fail to decrypt. Nothing is held in memory beyond
one chunk. The key is per blob, derived from the subject's DEK (``KeyRing.blob_key``), so
crypto-shredding the subject makes the blob unreadable too.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from voicedesk.domain.errors import IntegrityError, InvalidInputError, NotFoundError

MAGIC = b"VDB1"
CHUNK = 64 * 1024
_LEN = struct.Struct(">I")


class BlobWriter(Protocol):
    async def write(self, data: bytes) -> None: ...

    async def close(self) -> int:
        """Finish the blob; returns the plaintext size."""
        ...

    async def abort(self) -> None:
        """Discard everything written so far."""
        ...


class BlobStore(Protocol):
    """Where encrypted blobs live; a PostgreSQL or S3 implementation can replace the folder."""

    async def open_writer(self, name: str, key: bytes) -> BlobWriter: ...

    def read(self, name: str, key: bytes) -> AsyncIterator[bytes]: ...

    async def delete(self, name: str) -> bool: ...

    async def exists(self, name: str) -> bool: ...

    async def stored_size(self, name: str) -> int: ...


def _aad(name: str, index: int, final: bool) -> bytes:
    return f"{name}|{index}|{int(final)}".encode()


class _FileBlobWriter:
    def __init__(self, path: Path, name: str, key: bytes, fh: BinaryIO, prefix: bytes) -> None:
        self._path, self._name, self._fh, self._prefix = path, name, fh, prefix
        self._aead = AESGCM(key)
        self._buf = bytearray()
        self._index = 0
        self._size = 0
        self._closed = False

    def _record(self, data: bytes, final: bool) -> bytes:
        nonce = self._prefix + struct.pack(">I", self._index)
        ct = self._aead.encrypt(nonce, data, _aad(self._name, self._index, final))
        self._index += 1
        return _LEN.pack(len(ct)) + ct

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise RuntimeError("blob writer is closed; open a new one")
        self._buf += data
        self._size += len(data)
        if len(self._buf) >= CHUNK:
            out = bytearray()
            while len(self._buf) >= CHUNK:
                out += self._record(bytes(self._buf[:CHUNK]), final=False)
                del self._buf[:CHUNK]
            await asyncio.to_thread(self._write_flush, bytes(out))

    def _write_flush(self, data: bytes) -> None:
        self._fh.write(data)
        self._fh.flush()

    async def close(self) -> int:
        if self._closed:
            return self._size
        record = self._record(bytes(self._buf), final=True)
        self._buf.clear()
        self._closed = True

        def finish() -> None:
            self._fh.write(record)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

        await asyncio.to_thread(finish)
        return self._size

    async def abort(self) -> None:
        self._closed = True
        self._buf.clear()
        self._fh.close()
        self._path.unlink(missing_ok=True)


class FileBlobStore:
    """Blobs as files under a folder (the embedded default)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        if name.startswith("/") or ".." in Path(name).parts or not name:
            raise InvalidInputError("invalid blob name", field="name")
        return self.root / name

    async def open_writer(self, name: str, key: bytes) -> BlobWriter:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        prefix = os.urandom(8)
        fh = path.open("xb")
        fh.write(MAGIC + prefix)
        return _FileBlobWriter(path, name, key, fh, prefix)

    async def read(self, name: str, key: bytes) -> AsyncIterator[bytes]:
        path = self._path(name)
        if not path.exists():
            raise NotFoundError("blob not found")
        aead = AESGCM(key)
        with path.open("rb") as fh:
            head = fh.read(12)
            if head[:4] != MAGIC or len(head) != 12:
                raise IntegrityError("not a voicedesk blob")
            prefix = head[4:]
            index = 0
            final_seen = False
            while True:
                raw_len = await asyncio.to_thread(fh.read, 4)
                if not raw_len:
                    break
                if final_seen or len(raw_len) != 4:
                    raise IntegrityError("blob has trailing or truncated data")
                (n,) = _LEN.unpack(raw_len)
                ct = await asyncio.to_thread(fh.read, n)
                if len(ct) != n:
                    raise IntegrityError("blob is truncated")
                nonce = prefix + struct.pack(">I", index)
                plain: bytes | None = None
                for final in (False, True):
                    try:
                        plain = aead.decrypt(nonce, ct, _aad(name, index, final))
                    except InvalidTag:
                        continue
                    final_seen = final
                    break
                if plain is None:
                    raise IntegrityError("blob chunk failed authentication")
                index += 1
                yield plain
            if not final_seen:
                raise IntegrityError("blob is truncated (no final chunk)")

    async def delete(self, name: str) -> bool:
        try:  # one system call, not a stat first (the retention sweep deletes blobs by the 100,000)
            self._path(name).unlink()
        except FileNotFoundError:
            return False
        return True

    async def exists(self, name: str) -> bool:
        return self._path(name).exists()

    async def stored_size(self, name: str) -> int:
        path = self._path(name)
        return path.stat().st_size if path.exists() else 0
