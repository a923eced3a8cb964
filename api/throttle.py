"""Failed authentication, counted per account and per client address, in the database.

Counting in PostgreSQL (table `auth_failures`) keeps the limit one limit however many API
processes answer (CITYOPS_API_WORKERS): a per-process counter would multiply by their number.
A subject is `account:<username>` (known or not: an unknown name is counted exactly like a
known one, so the answers do not tell which names exist), `key:<prefix>` for API keys, and
`address:<client ip>`. Failures are counted in a fixed window of `auth_failure_window_s`.
Reaching the limit within it locks the subject for `auth_lockout_s` (等保 level 3: login failure
handling): every attempt on it is answered 429 with Retry-After, before any password is
verified (an attacker also stops costing argon2 CPU), until the time ends or a security
administrator unlocks it (POST /v1/lockouts/unlock). The lock is audited as `auth.throttled`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import orjson
from psycopg_pool import AsyncConnectionPool

from cityops.errors import TooManyAttempts
from cityops.settings import Settings


@dataclass(frozen=True)
class Subjects:
    account: str  # "account:<name>" or "key:<prefix>"
    address: str  # "address:<ip>"

    @classmethod
    def of(cls, kind: str, name: str, source: str) -> Subjects:
        return cls(f"{kind}:{name[:100]}", f"address:{source or 'unknown'}")


class Throttle:
    def __init__(self, pool: AsyncConnectionPool, settings: Settings) -> None:
        self.pool = pool
        self.window_s = settings.auth_failure_window_s
        self.lockout_s = settings.auth_lockout_s
        self.limits = {"account": settings.auth_failures_per_account,
                       "key": settings.auth_failures_per_account,
                       "address": settings.auth_failures_per_address}

    def _limit(self, subject: str) -> int:
        return self.limits[subject.partition(":")[0]]

    async def check(self, subjects: Subjects) -> None:
        """TooManyAttempts while the account or the address is locked."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT subject, extract(epoch FROM locked_until - now()) FROM auth_failures"
                " WHERE subject = ANY(%s) AND locked_until > now()",
                ([subjects.account, subjects.address],),
            )
            rows = await cur.fetchall()
        for subject, left_s in rows:
            what = "this address" if subject.startswith("address:") else "this account"
            retry = max(1, math.ceil(left_s))
            raise TooManyAttempts(
                f"too many failed attempts for {what}: try again in {retry} s",
                retry_after_s=retry)

    async def failed(self, subjects: Subjects, reason: str) -> None:
        """Count a failure on both subjects and audit it (never the password or key)."""
        async with self.pool.connection() as conn:
            crossed = []
            for subject in (subjects.account, subjects.address):
                cur = await conn.execute(
                    "INSERT INTO auth_failures AS f (subject, failures, window_start,"
                    " last_failed_at) VALUES (%s, 1, now(), now())"
                    " ON CONFLICT (subject) DO UPDATE SET last_failed_at = now(),"
                    " failures = CASE WHEN f.window_start > now() - make_interval(secs => %s)"
                    "   THEN f.failures + 1 ELSE 1 END,"
                    " window_start = CASE WHEN f.window_start > now()"
                    "   - make_interval(secs => %s) THEN f.window_start ELSE now() END"
                    " RETURNING failures", (subject, self.window_s, self.window_s),
                )
                if (await cur.fetchone())[0] == self._limit(subject):  # type: ignore[index]
                    crossed.append(subject)
                    # locked until a security administrator unlocks it or the time ends
                    await conn.execute(
                        "UPDATE auth_failures SET locked_until = now()"
                        " + make_interval(secs => %s) WHERE subject = %s",
                        (self.lockout_s, subject))
            await _audit(conn, "auth.failed", subjects, {"reason": reason})
            if crossed:
                await _audit(conn, "auth.throttled", subjects, {"subjects": crossed})

    async def unlock(self, subject: str) -> bool:
        """Lift a lockout and forget the failures (the security administrator's route)."""
        async with self.pool.connection() as conn:
            cur = await conn.execute("DELETE FROM auth_failures WHERE subject = %s", (subject,))
            return cur.rowcount > 0

    async def succeeded(self, subjects: Subjects) -> None:
        """A right password clears its account's count; the address keeps its count, or one
        valid login would reset the count of guesses at every other account."""
        async with self.pool.connection() as conn:
            await conn.execute("DELETE FROM auth_failures WHERE subject = %s",
                               (subjects.account,))


async def _audit(conn, action: str, subjects: Subjects, detail: dict) -> None:
    await conn.execute(
        "INSERT INTO audit_log (actor, actor_kind, action, target, source, outcome, detail)"
        " VALUES (%s, 'anonymous', %s, %s, %s, 'denied', %s::jsonb)",
        (subjects.account.partition(":")[2], action, subjects.account,
         subjects.address.partition(":")[2], orjson.dumps(detail).decode()),
    )
