"""Office files previewed as PDF: the state of each conversion (object_previews, one row per
distinct content) and the runner that converts in the background of the API process.

Why a runner in the API process and not a procrastinate queue (cityops/job_queue.py): the
input is already in the database and the output goes back there, nothing else waits on it, and
a lost conversion costs only a later retry; a queue would add a worker process to deploy for
the desk's files alone. What a queue gives is kept: a row is claimed in the database before
converting (`claim`: one API process converts one content, however many ask), and a claim
left by a stopped process is taken again once it is older than the timeout (the next upload
or preview request of that file). One LibreOffice at a time per process; the files waiting
are converted together (LibreOffice's start is the cost).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from cityops.settings import Settings
from datafoundation import office_preview
from datafoundation.catalogue.objects import store_blob

log = logging.getLogger(__name__)
# content type -> the suffix LibreOffice recognises the file by
OFFICE_TYPES = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/msword": "doc",
    "application/vnd.ms-excel": "xls",
}
BATCH = 8  # files in one LibreOffice call at most
GATHER_S = 0.5  # how long the first file waits for others uploaded with it


async def state(conn: AsyncConnection, sha256: str, with_pdf: bool = False) -> dict | None:
    """{state, reason, pdf_sha256[, pdf]} of a content, or None if never asked for."""
    pdf = ", b.data AS pdf" if with_pdf else ""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT p.state, p.reason, p.pdf_sha256, p.started_at{pdf} FROM object_previews p"
            " LEFT JOIN object_blobs b ON b.sha256 = p.pdf_sha256 WHERE p.sha256 = %s",
            (sha256,))
        return await cur.fetchone()


async def states(conn: AsyncConnection, digests: list[str]) -> dict[str, dict]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT sha256, state, reason FROM object_previews"
                          " WHERE sha256 = ANY(%s)", (digests,))
        return {row.pop("sha256"): row for row in await cur.fetchall()}


async def claim(conn: AsyncConnection, sha256: str, stale_after_s: float) -> bool:
    """True if this process is to convert the content: never asked for, or a conversion
    left by a stopped process (started longer than `stale_after_s` ago)."""
    cur = await conn.execute(
        "INSERT INTO object_previews (sha256, state) VALUES (%s, 'converting')"
        " ON CONFLICT (sha256) DO UPDATE SET started_at = now()"
        " WHERE object_previews.state = 'converting'"
        " AND object_previews.started_at < now() - make_interval(secs => %s)"
        " RETURNING sha256", (sha256, stale_after_s))
    return await cur.fetchone() is not None


async def ask(conn: AsyncConnection, runner: PreviewRunner, meta: dict) -> str | None:
    """An office file's preview state, its conversion started (again) if never asked for or
    left by a stopped process; None for other files."""
    if meta["content_type"] not in OFFICE_TYPES:
        return None
    if await claim(conn, meta["sha256"], runner.stale_after_s):
        await conn.commit()  # the runner reads the file and the claim on its own connection
        runner.submit(meta["sha256"])
        return "converting"
    found = await state(conn, meta["sha256"])
    return found["state"] if found else None


async def with_states(conn: AsyncConnection, runner: PreviewRunner,
                      files: list[dict]) -> list[dict]:
    """A file list with each office file's `preview` and `preview_failure`; a conversion
    never started, or left by a stopped process, is started (the desk's list asks every 2 s
    while one converts)."""
    found = await states(conn, [f["sha256"] for f in files])
    out = []
    for f in files:
        known = found.get(f["sha256"], {})
        preview = known.get("state")
        if f["content_type"] in OFFICE_TYPES and preview in (None, "converting"):
            preview = await ask(conn, runner, f)
        out.append({**f, "preview": preview, "preview_failure": known.get("reason")})
    return out


def runner_for(state: object) -> PreviewRunner:
    """The API process's one runner, kept on its app state (stopped with the process)."""
    if getattr(state, "previews", None) is None:
        state.previews = PreviewRunner(state.pool, state.settings)  # type: ignore[attr-defined]
    return state.previews  # type: ignore[attr-defined]


class PreviewRunner:
    """Converts claimed contents in the background; `stop` at the API's shutdown."""

    def __init__(self, pool: AsyncConnectionPool, settings: Settings) -> None:
        self.pool, self.settings = pool, settings
        self.waiting: asyncio.Queue[str] = asyncio.Queue()
        self.task: asyncio.Task | None = None

    @property
    def stale_after_s(self) -> float:
        return self.settings.office_preview_timeout_s + 30

    def submit(self, sha256: str) -> None:
        self.waiting.put_nowait(sha256)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._serve(), name="office previews")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()  # a running LibreOffice is killed (office_preview._run)
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _serve(self) -> None:
        while True:
            batch = [await self.waiting.get()]
            await asyncio.sleep(GATHER_S)
            while len(batch) < BATCH and not self.waiting.empty():
                batch.append(self.waiting.get_nowait())
            try:
                await self._convert(list(dict.fromkeys(batch)))
            except Exception:  # the runner outlives one bad batch; the rows are asked again
                log.exception("office previews: a batch failed; retried on the next request")

    async def _convert(self, digests: list[str]) -> None:
        files, failed = await self._inputs(digests)
        results: dict[str, office_preview.Converted] = {}
        if files:
            try:
                results = await office_preview.convert(
                    {name: data for name, (_, data) in files.items()},
                    soffice=self.settings.office_preview_soffice,
                    timeout_s=self.settings.office_preview_timeout_s,
                    max_pdf_bytes=self.settings.upload_max_bytes * 4,
                    no_network=self.settings.office_preview_no_network)
            except office_preview.ConversionFailed as err:
                results = {name: office_preview.Converted(reason=err.detail) for name in files}
        async with self.pool.connection() as conn:
            for digest, reason in failed.items():
                await _finish(conn, digest, None, reason)
            for name, (digest, _) in files.items():
                await _finish(conn, digest, results[name].pdf, results[name].reason)

    async def _inputs(self, digests: list[str]) -> tuple[dict[str, tuple[str, bytes]],
                                                          dict[str, str]]:
        """The files to convert by name ("<n>.<suffix>"), and those refused before."""
        limit = self.settings.office_preview_max_bytes
        async with self.pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(
                "SELECT DISTINCT ON (o.sha256) o.sha256, o.content_type, b.data"
                " FROM objects o JOIN object_blobs b USING (sha256)"
                " WHERE o.sha256 = ANY(%s)", (digests,))
            rows = await cur.fetchall()
            await conn.execute("UPDATE object_previews SET started_at = now()"
                               " WHERE sha256 = ANY(%s) AND state = 'converting'", (digests,))
        files, failed = {}, {}
        for number, (digest, kind, data) in enumerate(rows):
            if len(data) > limit:
                failed[digest] = (f"{len(data)} bytes is over the preview limit of {limit}"
                                  " bytes (the file can still be downloaded)")
            else:
                files[f"{number}.{OFFICE_TYPES.get(kind, 'docx')}"] = (digest, bytes(data))
        return files, failed


async def _finish(conn: AsyncConnection, digest: str, pdf: bytes | None,
                  reason: str | None) -> None:
    async with conn.transaction():
        pdf_sha = await store_blob(conn, pdf) if pdf is not None else None
        await conn.execute(
            "UPDATE object_previews SET state = %s, pdf_sha256 = %s, reason = %s,"
            " finished_at = now() WHERE sha256 = %s",
            ("ready" if pdf_sha else "failed", pdf_sha,
             None if pdf_sha else (reason or "no PDF was made"), digest))
