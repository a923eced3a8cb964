"""Presets: named lists of commands for the command centre ("morning briefing": video wall on,
layout 4, amplifier at -20 dB), run as one audited operation.

Steps run one after another, each waiting for the previous one's outcome, because a layout
sent to a wall that is still off would be lost. The first step that does not succeed stops
the run; the steps after it are reported `skipped`. The run's per-step report is kept in
`preset_runs.steps` and its end is written to the audit log.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from api.middleware import write_audit
from api.services import commands
from api.services.commands import FINAL, Commander
from cityops.errors import NotFound, PlatformError
from cityops.principal import Principal

log = logging.getLogger(__name__)
POLL_S = 0.1


async def load(pool: AsyncConnectionPool, name: str) -> dict[str, Any]:
    async with pool.connection() as conn:
        return await load_with(conn, name)


async def load_with(conn: AsyncConnection, name: str) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT name, title, steps, updated_by, updated_at FROM presets"
                          " WHERE name = %s", (name,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"preset {name!r} does not exist")
    return row


async def get_run(pool: AsyncConnectionPool, run_id: uuid.UUID) -> dict[str, Any]:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT id, preset, started_by, started_at, finished_at, state, steps"
                          " FROM preset_runs WHERE id = %s", (run_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"preset run {run_id} not found")
    return row


class PresetRunner:
    def __init__(self, pool: AsyncConnectionPool, commander: Commander) -> None:
        self.pool = pool
        self.commander = commander
        self._tasks: set[asyncio.Task] = set()

    async def start(self, name: str, caller: Principal, source: str) -> uuid.UUID:
        preset = await load(self.pool, name)
        run_id = uuid.uuid4()
        report = [{**step, "command": None, "state": "waiting", "detail": "", "readback": None}
                  for step in preset["steps"]]
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO preset_runs (id, preset, started_by, state, steps)"
                " VALUES (%s, %s, %s, 'running', %s)", (run_id, name, caller.name, Jsonb(report)),
            )
        task = asyncio.get_running_loop().create_task(
            self._run(run_id, name, report, caller, source))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run_id

    async def _run(self, run_id: uuid.UUID, name: str, report: list[dict[str, Any]],
                   caller: Principal, source: str) -> None:
        ok = True
        for index, step in enumerate(report):
            if not ok:
                step["state"] = "skipped"
                continue
            ok = await self._step(run_id, index, step, caller.name)
            await self._save(run_id, report, None)
        state = "succeeded" if ok else "failed"
        await self._save(run_id, report, state)
        await write_audit(
            self.pool, actor=caller.name, actor_kind=caller.kind, role=caller.role.value,
            action="preset.finished", target=f"/v1/preset-runs/{run_id}", source=source,
            outcome="ok" if ok else "failed", status=None,
            detail={"preset": name, "run": str(run_id),
                    "steps": [{k: s[k] for k in ("device", "command", "state", "detail")}
                              for s in report]},
        )

    async def _step(self, run_id: uuid.UUID, index: int, step: dict[str, Any], actor: str
                    ) -> bool:
        action = {k: step.get(k) for k in ("point", "value", "method", "args")}
        try:
            row = await self.commander.submit(actor, step["device"], action,
                                              step.get("ttl_s", 30), run=(run_id, index))
        except PlatformError as err:
            step.update(state="rejected" if err.code == "invalid_input" else "failed",
                        detail=err.detail)
            return False
        step["command"] = str(row["id"])
        while row["state"] not in FINAL:
            await asyncio.sleep(POLL_S)
            async with self.pool.connection() as conn:
                row = await commands.get(conn, row["id"])
        step.update(state=row["state"], detail=row["detail"], readback=row["readback"])
        return row["state"] == "succeeded"

    async def _save(self, run_id: uuid.UUID, report: list[dict[str, Any]], state: str | None
                    ) -> None:
        async with self.pool.connection() as conn:
            await conn.execute(
                "UPDATE preset_runs SET steps = %s, state = coalesce(%s, state),"
                " finished_at = CASE WHEN %s::text IS NULL THEN NULL ELSE now() END"
                " WHERE id = %s", (Jsonb(report), state, state, run_id),
            )

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
