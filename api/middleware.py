"""Audit and metering around every HTTP call, as a plain ASGI middleware (a streaming answer
such as Server-Sent Events passes through untouched).

- Every write (any method but GET/HEAD/OPTIONS) gets an audit row: who, what, when, from
  where, outcome. The row is committed before the answer leaves, so a client that sees 2xx
  can rely on it being there. Request bodies are never recorded: they may hold secrets.
- Every call made with an API key is metered (key, route, status, duration) into a buffer
  that api.metering flushes into the `api_calls` hypertable.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.docs import route_template
from cityops.principal import Principal

log = logging.getLogger(__name__)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    if status in (401, 403, 429):
        return "denied"
    if status < 500:
        return "invalid"
    return "failed"


async def write_audit(
    pool: Any, *, actor: str, actor_kind: str, role: str | None, action: str, target: str,
    source: str, outcome: str, status: int | None, detail: dict[str, Any],
) -> None:
    async with pool.connection() as conn:
        await write_audit_conn(conn, actor=actor, actor_kind=actor_kind, role=role,
                               action=action, target=target, source=source, outcome=outcome,
                               status=status, detail=detail)


async def write_audit_conn(
    conn: Any, *, actor: str, actor_kind: str, role: str | None, action: str, target: str,
    source: str, outcome: str, status: int | None, detail: dict[str, Any],
) -> None:
    """An audit row in the caller's own transaction: it commits (or not) with the change."""
    await conn.execute(
        "INSERT INTO audit_log (actor, actor_kind, role, action, target, source, outcome,"
        " status, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
        (actor, actor_kind, role, action, target, source, outcome, status,
         orjson.dumps(detail, default=str).decode()),
    )


class AuditAndMetering:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        started = time.perf_counter()
        is_write = scope["method"] not in READ_METHODS
        status = 500
        audited = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, audited
            if message["type"] == "http.response.start":
                status = message["status"]
                if is_write:
                    audited = True
                    await self._audit(scope, state, status)
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            if is_write and not audited:
                await self._audit(scope, state, 500)
            raise
        finally:
            self._meter(scope, state, status, time.perf_counter() - started)

    async def _audit(self, scope: Scope, state: dict[str, Any], status: int) -> None:
        principal: Principal | None = state.get("principal")
        template = route_template(scope)
        client = scope.get("client")
        try:
            await write_audit(
                scope["app"].state.pool,
                actor=principal.name if principal else state.get("audit_actor", "anonymous"),
                actor_kind=principal.kind if principal else "anonymous",
                role=principal.role.value if principal else None,
                action=f"{scope['method']} {template}",
                target=scope["path"],
                source=client[0] if client else "",
                outcome=outcome_of(status),
                status=status,
                detail=state.get("audit_detail", {}),
            )
        except Exception:
            # the write itself already happened: say loudly that its record is missing
            log.exception("audit: could not record %s %s", scope["method"], scope["path"])

    def _meter(self, scope: Scope, state: dict[str, Any], status: int, elapsed_s: float) -> None:
        principal: Principal | None = state.get("principal")
        if principal is None or principal.key_id is None:
            return
        meter = getattr(scope["app"].state, "meter", None)
        if meter is None:
            return
        template = route_template(scope)
        meter.record(principal.key_id, scope["method"], template, status, elapsed_s * 1000)
