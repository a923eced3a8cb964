"""Backups encrypted as a stream with AES-256-GCM (the `cryptography` package).

A backup can be larger than memory, so it is cut into chunks of 1 MiB, each sealed on its own:
    header = MAGIC | salt (16 bytes) | nonce prefix (7 bytes)
    chunk  = length (4 bytes, big-endian) | AES-GCM(ciphertext + tag)
The chunk's nonce is the prefix, its number (4 bytes) and a last-chunk flag (1 byte), and the
header is authenticated with every chunk: a chunk altered, dropped, reordered or a stream cut
short fails to decrypt, and the restore stops naming the chunk. The AES key is derived from
the settings' key with HKDF-SHA256 and the backup's own salt, so no two backups share a key.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cityops.errors import ConfigError, InvalidInput

MAGIC = b"CITYOPS-BACKUP-1"
CHUNK = 1 << 20
MIN_KEY_CHARS = 32
_LENGTH = struct.Struct(">I")


def _aes(key: str, salt: bytes) -> AESGCM:
    if len(key) < MIN_KEY_CHARS:
        raise ConfigError(f"CITYOPS_BACKUP_KEY must be set to at least {MIN_KEY_CHARS} characters"
                          " (e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(48))')")
    material = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                    info=b"cityops backup").derive(key.encode())
    return AESGCM(material)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class EncryptingWriter:
    """A write-only file object: what is written comes out sealed into `out`."""

    def __init__(self, out: BinaryIO, key: str) -> None:
        salt, self._prefix = os.urandom(16), os.urandom(7)
        self._aes, self._out = _aes(key, salt), out
        self._header = MAGIC + salt + self._prefix
        out.write(self._header)
        self._buffer = bytearray()
        self._index = 0

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) > CHUNK:  # keep one back: the last chunk is sealed as last
            self._seal(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]
        return len(data)

    def _seal(self, plain: bytes, last: bool) -> None:
        sealed = self._aes.encrypt(_nonce(self._prefix, self._index, last), plain, self._header)
        self._out.write(_LENGTH.pack(len(sealed)) + sealed)
        self._index += 1

    def close(self) -> None:
        self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()

    def flush(self) -> None:
        """Nothing to do: chunks go out whole (tarfile calls this)."""


class DecryptingReader:
    """A read-only file object over a sealed stream; fails on any tampering."""

    def __init__(self, source: BinaryIO, key: str, name: str = "backup") -> None:
        self._source, self._name = source, name
        head = source.read(len(MAGIC) + 23)
        if len(head) < len(MAGIC) + 23 or not head.startswith(MAGIC):
            raise InvalidInput(f"{name} is not a CityOps backup (no {MAGIC.decode()} header)")
        self._header, self._prefix = head, head[len(MAGIC) + 16:]
        self._aes = _aes(key, head[len(MAGIC):len(MAGIC) + 16])
        self._buffer, self._index, self._done = bytearray(), 0, False

    def _next_chunk(self) -> None:
        raw = self._source.read(_LENGTH.size)
        if len(raw) < _LENGTH.size:
            raise InvalidInput(f"{self._name} is cut short after chunk {self._index}")
        sealed = self._source.read(_LENGTH.unpack(raw)[0])
        for last in (False, True):
            try:
                plain = self._aes.decrypt(_nonce(self._prefix, self._index, last), sealed,
                                          self._header)
            except InvalidTag:
                continue
            self._buffer += plain
            self._index += 1
            self._done = last
            return
        raise InvalidInput(f"{self._name}: chunk {self._index} does not decrypt (wrong"
                           " CITYOPS_BACKUP_KEY, or the file was altered)")

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            self._next_chunk()
        if self._done and self._source.read(1):
            raise InvalidInput(f"{self._name} has data after its last chunk")
        size = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out
