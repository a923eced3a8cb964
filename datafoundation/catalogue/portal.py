"""The portal's access flow: apply stating the purpose -> compliance check -> grant
(unconditional sharing) or the provider's decision (conditional) -> an API key scoped to the
resource; revocation and expiry. Time limits are in working days on the county's calendar:
the compliance check within 2, the provider's answer within 5 (provincial rules, see the
reference note C2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityevents.calendar import WorkCalendar
from cityops.errors import Conflict, Forbidden, InvalidInput, NotFound
from cityops.principal import Principal, Role
from datafoundation.catalogue import keys, resources

CHECK_DAYS, PROVIDER_DAYS = 2, 5
MIN_PURPOSE_CHARS = 10
_APPLICATION = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,40}$")


@dataclass
class Application:
    resource_code: str
    application: str
    purpose: str
    scenario: str = ""
    days: int = 90


def compliance_check(app: Application, resource: dict, department: str | None) -> str | None:
    """符合性审查: None when it passes, else why not. Automatic, so always on time."""
    if resource["sharing_type"] == "not_shared":
        return f"not shared: {resource['sharing_conditions']}"
    if department is None:
        return "the applicant belongs to no department"
    if len(app.purpose.strip()) < MIN_PURPOSE_CHARS:
        return f"state the purpose (用途) in at least {MIN_PURPOSE_CHARS} characters"
    if not _APPLICATION.match(app.application):
        return "application: lowercase letters, digits, '.', '_' or '-'"
    return None


async def _insert_request(conn, app, principal, department, state, now, cal, check) -> int:
    work_day = cal.day_s
    cur = await conn.execute(
        "INSERT INTO access_requests (resource_code, applicant, applicant_department,"
        " application, purpose, scenario, days, state, submitted_at, check_due_at, checked_at,"
        " check_result, provider_due_at, decided_at, decided_by, reason) VALUES"
        " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (app.resource_code, principal.name, department, app.application, app.purpose,
         app.scenario, app.days, state, now,
         cal.add_work_seconds(now, CHECK_DAYS * work_day), now, check or "passed",
         cal.add_work_seconds(now, PROVIDER_DAYS * work_day) if state == "with_provider"
         else None,
         None if state == "with_provider" else now,
         None if state == "with_provider" else "compliance-check", check),
    )
    return (await cur.fetchone())[0]


async def apply(
    conn: AsyncConnection, cal: WorkCalendar, principal: Principal, app: Application,
    now: datetime,
) -> tuple[int, str | None]:
    """(request id, the API key when granted at once to the caller)."""
    resource = await resources.get(conn, app.resource_code)
    department = (await resources.staff_department(conn, principal)
                  if principal.kind == "user" else None)
    if principal.role == Role.ADMIN and department is None:
        department = resources.PLATFORM_PROVIDER
    failed = compliance_check(app, resource, department)
    async with conn.transaction():
        if failed is not None:
            return await _insert_request(conn, app, principal, department, "refused", now,
                                         cal, failed), None
        if resource["sharing_type"] == "conditional":
            return await _insert_request(conn, app, principal, department, "with_provider",
                                         now, cal, None), None
        request_id = await _insert_request(conn, app, principal, department, "granted", now,
                                           cal, None)
        key = await _grant(conn, request_id, now, deliver=True)
    return request_id, key


async def _request(conn: AsyncConnection, request_id: int) -> dict:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT a.*, r.provider_id FROM access_requests a"
            " JOIN resources r ON r.code = a.resource_code WHERE a.id = %s FOR UPDATE OF a",
            (request_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"access request {request_id} does not exist")
    return row


async def _grant(conn: AsyncConnection, request_id: int, now: datetime, deliver: bool,
                 days: int | None = None):
    """Record the grant and issue or extend the application's key; returns the secret when
    `deliver` (the applicant is the caller) and a new key was made. `days`: the provider's
    shorter term, else the days asked for."""
    req = await _request(conn, request_id)
    expires_at = now + timedelta(days=days or req["days"])
    key_id, secret = await keys.issue_or_extend(
        conn, applicant=req["applicant"], application=req["application"],
        request_id=request_id, expires_at=expires_at, now=now,
    )
    await conn.execute(
        "INSERT INTO grants (resource_code, request_id, grantee, application, api_key_id,"
        " key_issued, key_delivered_at, granted_at, expires_at) VALUES"
        " (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (req["resource_code"], request_id, req["applicant"], req["application"], key_id,
         secret is not None, now if (secret and deliver) else None, now, expires_at),
    )
    return secret if deliver else None


async def decide(
    conn: AsyncConnection, principal: Principal, request_id: int, approve: bool, reason: str,
    now: datetime, days: int | None = None,
) -> None:
    """The provider approves (for the days asked, or fewer), or refuses with a reason
    (conditional sharing only). A request decided already answers 409: of two people deciding
    at once, the second learns the first did (the row is locked while deciding)."""
    if not approve and not reason.strip():
        raise InvalidInput("reason: a refusal must state its basis")
    async with conn.transaction():
        req = await _request(conn, request_id)
        await resources.check_provider(conn, principal, req["provider_id"])
        if req["state"] != "with_provider":
            raise Conflict(f"access request {request_id} is {req['state']}, not awaiting"
                           " the provider")
        if days is not None and days > req["days"]:
            raise InvalidInput(f"days: at most the {req['days']} days asked for")
        await conn.execute(
            "UPDATE access_requests SET state = %s, decided_at = %s, decided_by = %s,"
            " reason = %s WHERE id = %s",
            ("granted" if approve else "refused", now, principal.name, reason or None,
             request_id),
        )
        if approve:
            await _grant(conn, request_id, now, deliver=False, days=days)


async def collect_key(conn: AsyncConnection, principal: Principal, request_id: int) -> str:
    """The applicant collects the key of a grant someone else approved, once."""
    async with conn.transaction():
        req = await _request(conn, request_id)
        if req["applicant"] != principal.name:
            raise Forbidden("only the applicant collects the key")
        cur = await conn.execute(
            "SELECT id, api_key_id, key_issued, key_delivered_at FROM grants"
            " WHERE request_id = %s AND revoked_at IS NULL FOR UPDATE", (request_id,),
        )
        grant = await cur.fetchone()
        if grant is None:
            raise Conflict(f"access request {request_id} has no live grant")
        if not grant[2] or grant[3] is not None:
            raise Conflict("this grant's key was delivered already (or it extended a key"
                           " the application holds): use that key")
        await conn.execute("UPDATE grants SET key_delivered_at = now() WHERE id = %s",
                           (grant[0],))
        return await keys.rotate(conn, grant[1])


async def revoke(
    conn: AsyncConnection, principal: Principal, grant_id: int, reason: str, now: datetime
) -> bool:
    """Revoke a grant; its key goes too once no live grant uses it. True when it did."""
    if not reason.strip():
        raise InvalidInput("a revocation must state its reason")
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT g.*, r.provider_id FROM grants g JOIN resources r ON r.code = g.resource_code"
            " WHERE g.id = %s FOR UPDATE OF g", (grant_id,),
        )
        grant = await cur.fetchone()
        if grant is None:
            raise NotFound(f"grant {grant_id} does not exist")
        await resources.check_provider(conn, principal, grant["provider_id"])
        if grant["revoked_at"] is not None:
            raise Conflict(f"grant {grant_id} was revoked already")
        await cur.execute(
            "UPDATE grants SET revoked_at = %s, revoked_by = %s, revoke_reason = %s"
            " WHERE id = %s", (now, principal.name, reason, grant_id),
        )
        return await keys.revoke_if_unused(conn, grant["api_key_id"], now)


async def may_read(
    conn: AsyncConnection, principal: Principal, resource: dict, now: datetime
) -> None:
    """Who reads a resource's data: an API key or a person with a live grant for it, the
    provider's own staff, admins; open-to-public resources any authenticated caller."""
    if resource["open_to_public"] or principal.role == Role.ADMIN:
        return
    if principal.kind == "api_key":
        cur = await conn.execute(
            "SELECT 1 FROM grants WHERE api_key_id = %s AND resource_code = %s"
            " AND revoked_at IS NULL AND expires_at > %s",
            (principal.key_id, resource["code"], now),
        )
    else:
        if await resources.staff_department(conn, principal) == resource["provider_id"]:
            return
        cur = await conn.execute(
            "SELECT 1 FROM grants WHERE grantee = %s AND resource_code = %s"
            " AND revoked_at IS NULL AND expires_at > %s",
            (principal.name, resource["code"], now),
        )
    if await cur.fetchone() is None:
        raise Forbidden(f"no live grant for resource {resource['code']}: apply in the portal")
