"""Unstructured data: documents, photos and scans attached to events and resources.

Each upload is checked for size and type (the declared content type must match the file's own
first bytes, so a renamed executable is not stored as a "photo"), hashed with SHA-256 and stored
once per distinct content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from urllib.parse import quote

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.csv_files import decode
from cityops.errors import InvalidInput, NotFound


def _text(data: bytes) -> bool:
    """Text as people save it: UTF-8 (with or without a BOM), GBK or UTF-16 (csv_files)."""
    try:
        text, _encoding = decode(data, "file")
    except InvalidInput:
        return False
    return "\x00" not in text


def _prefix(*magics: bytes) -> Callable[[bytes], bool]:
    return lambda data: any(data.startswith(m) for m in magics)


_ZIP = _prefix(b"PK\x03\x04")
_OLE = _prefix(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")  # the older office files (doc, xls)
# content type -> a check of the file's own bytes
ALLOWED_TYPES: dict[str, Callable[[bytes], bool]] = {
    "application/pdf": _prefix(b"%PDF-"),
    "image/png": _prefix(b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": _prefix(b"\xff\xd8\xff"),
    "image/tiff": _prefix(b"II*\x00", b"MM\x00*"),  # scanners' usual output
    "text/plain": _text,
    "text/csv": _text,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _ZIP,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _ZIP,
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": _ZIP,
    "application/msword": _OLE,
    "application/vnd.ms-excel": _OLE,
}
# what a browser shows itself (images, PDF in its viewer); the rest (office files, text that
# could be read as a page) is downloaded. Office files are previewed as PDF converted by
# LibreOffice in the background (previews.py, docs/console.md)
INLINE_TYPES = frozenset({"application/pdf", "image/png", "image/jpeg"})
OBJECT_COLUMNS = (
    "id, owner_kind, owner_id, transition_id, department_id, filename, content_type,"
    " size_bytes, sha256, uploaded_by, uploaded_at"
)


def disposition(filename: str, content_type: str) -> str:
    """Content-Disposition naming the file (RFC 6266: an ASCII fallback and the UTF-8 name)."""
    kind = "inline" if content_type in INLINE_TYPES else "attachment"
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in filename) or "file"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def check_upload(filename: str, content_type: str, data: bytes, max_bytes: int) -> str:
    """The normalised content type, or InvalidInput saying what is wrong."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if not data:
        raise InvalidInput(f"{filename}: the file is empty")
    if len(data) > max_bytes:
        raise InvalidInput(f"{filename}: {len(data)} bytes is over the limit of {max_bytes}")
    check = ALLOWED_TYPES.get(kind)
    if check is None:
        allowed = ", ".join(sorted(ALLOWED_TYPES))
        raise InvalidInput(f"{filename}: type {kind or 'unknown'!r} is not accepted ({allowed})")
    if not check(data):
        raise InvalidInput(f"{filename}: the content is not {kind}")
    return kind


async def store(
    conn: AsyncConnection, *, owner_kind: str, owner_id: str, department_id: str | None,
    filename: str, content_type: str, data: bytes, uploaded_by: str, max_bytes: int,
) -> dict:
    kind = check_upload(filename, content_type, data, max_bytes)
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        digest = await store_blob(conn, data)
        await cur.execute(
            "INSERT INTO objects (owner_kind, owner_id, department_id, filename, content_type,"
            " size_bytes, sha256, uploaded_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            f" RETURNING {OBJECT_COLUMNS}",
            (owner_kind, owner_id, department_id, filename[:255], kind, len(data), digest,
             uploaded_by),
        )
        return await cur.fetchone()


async def store_blob(conn: AsyncConnection, data: bytes) -> str:
    """Bytes stored once per distinct content; their SHA-256."""
    digest = hashlib.sha256(data).hexdigest()
    await conn.execute("INSERT INTO object_blobs (sha256, size_bytes, data) VALUES (%s, %s, %s)"
                       " ON CONFLICT (sha256) DO NOTHING", (digest, len(data), data))
    return digest


async def fetch(conn: AsyncConnection, owner_kind: str, owner_id: str, object_id: int):
    """(metadata, bytes) of one object of an owner."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {', '.join('o.' + c.strip() for c in OBJECT_COLUMNS.split(','))}, b.data"
            " FROM objects o JOIN object_blobs b USING (sha256)"
            " WHERE o.id = %s AND o.owner_kind = %s AND o.owner_id = %s",
            (object_id, owner_kind, owner_id),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"{owner_kind} {owner_id} has no attachment {object_id}")
    data = row.pop("data")
    return row, bytes(data)


async def list_for(conn: AsyncConnection, owner_kind: str, owner_id: str) -> list[dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {OBJECT_COLUMNS} FROM objects WHERE owner_kind = %s AND owner_id = %s"
            " ORDER BY id",
            (owner_kind, owner_id),
        )
        return await cur.fetchall()


async def link_to_transition(
    conn: AsyncConnection, event_id: int, transition_id: int, object_ids: list[int]
) -> None:
    """Attach uploaded files of this event to one of its transitions."""
    if not object_ids:
        return
    cur = await conn.execute(
        "UPDATE objects SET transition_id = %s WHERE id = ANY(%s) AND owner_kind = 'event'"
        " AND owner_id = %s AND transition_id IS NULL",
        (transition_id, object_ids, str(event_id)),
    )
    if cur.rowcount != len(set(object_ids)):
        raise InvalidInput(
            f"attachments {sorted(set(object_ids))} must be files uploaded to event {event_id}"
            " and not yet used by another transition"
        )
