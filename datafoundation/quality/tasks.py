"""校核纠错 tasks answered by people: the providing department's staff (or the data bureau)
comment on a task, or resolve it with a note saying what was corrected. A resolved task is
closed by that person; the next quality run opens a new one if the data still fails, so a
resolution never hides a failing rule for long (docs/data-foundation.md)."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import Conflict, Forbidden, InvalidInput, NotFound
from cityops.principal import Principal

MAX_NOTE_CHARS = 2000


def _checked_note(note: str) -> str:
    text = note.strip()
    if not text:
        raise InvalidInput("note: say what was found or corrected")
    if len(text) > MAX_NOTE_CHARS:
        raise InvalidInput(f"note: at most {MAX_NOTE_CHARS} characters")
    return text


async def _locked_task(conn: AsyncConnection, principal: Principal, task_id: int) -> dict:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT id, department_id, state FROM quality.tasks WHERE id = %s"
                      " FOR UPDATE", (task_id,))
    task = await cur.fetchone()
    if task is None:
        raise NotFound(f"quality task {task_id} does not exist")
    if not principal.sees_department(task["department_id"]):
        raise Forbidden(f"quality task {task_id} belongs to {task['department_id']},"
                        f" outside {principal.name}'s department")
    return task


async def note(conn: AsyncConnection, principal: Principal, task_id: int, kind: str,
               text: str) -> dict:
    """Add a comment, or resolve (kind 'resolve'): the task closes with the note as its
    resolution. A closed task takes neither (409): two people resolving at once, the second
    is told the first did."""
    text = _checked_note(text)
    async with conn.transaction():
        task = await _locked_task(conn, principal, task_id)
        if task["state"] != "open":
            raise Conflict(f"quality task {task_id} is closed already")
        if kind == "resolve":
            await conn.execute(
                "UPDATE quality.tasks SET state = 'closed', closed_at = now(), closed_by = %s,"
                " resolution = %s WHERE id = %s", (principal.name, text, task_id))
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "INSERT INTO quality.task_notes (task_id, kind, note, author) VALUES"
            " (%s, %s, %s, %s) RETURNING id, kind, note, author, at",
            (task_id, kind, text, principal.name))
        return await cur.fetchone()
