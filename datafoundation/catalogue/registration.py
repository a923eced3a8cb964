"""Registration of catalogue entries on the national 公共数据资源登记 platform (发改数据规〔2025〕
26号): 申请 → 受理 → 审核 → 公示 → 赋码, recorded here step by step with the code the platform
assigns, and the entries exported in the platform's fields (CSV/XLSX) for the 登记主体 to file.
The provider applies; the data bureau records the platform's later steps."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import Conflict, Forbidden, InvalidInput
from cityops.principal import Principal, Role
from datafoundation.catalogue import resources

STEPS = ("draft", "applied", "accepted", "reviewed", "publicized", "coded")
STATE_NAMES = {"draft": "未申请", "applied": "申请", "accepted": "受理", "reviewed": "审核",
               "publicized": "公示", "coded": "赋码", "rejected": "退回"}
SHARING_NAMES = {"unconditional": "无条件共享", "conditional": "有条件共享",
                 "not_shared": "不予共享"}
CYCLE_NAMES = {"realtime": "实时", "hourly": "每小时", "daily": "每日", "weekly": "每周",
               "monthly": "每月", "quarterly": "每季度", "yearly": "每年", "irregular": "不定期"}
BUREAU = (Role.ADMIN, Role.DATA_ADMIN)


def allowed_next(state: str) -> tuple[str, ...]:
    """The states a registration may move to: the next step; 'rejected' from any step the
    platform is handling; a rejected or draft entry (re-)applies."""
    if state in ("draft", "rejected"):
        return ("applied",)
    if state == "coded":
        return ()
    return (STEPS[STEPS.index(state) + 1], "rejected")


async def advance(conn: AsyncConnection, principal: Principal, code: str, state: str,
                  registration_code: str | None, note: str, now: datetime) -> dict:
    resource = await resources.get(conn, code)
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("INSERT INTO resource_registrations (resource_code) VALUES (%s)"
                          " ON CONFLICT DO NOTHING", (code,))
        await cur.execute("SELECT * FROM resource_registrations WHERE resource_code = %s"
                          " FOR UPDATE", (code,))
        current = await cur.fetchone()
        if state not in allowed_next(current["state"]):
            nxt = ", ".join(allowed_next(current["state"])) or "none (it is coded)"
            raise Conflict(f"registration of {code} is {current['state']}: it can go to {nxt},"
                           f" not {state}")
        if state == "applied":
            await resources.check_provider(conn, principal, resource["provider_id"])
        elif principal.role not in BUREAU:
            raise Forbidden(f"the platform's step {state!r} is recorded by the data bureau")
        if state == "coded" and not (registration_code or "").strip():
            raise InvalidInput("赋码: give the registration_code the national platform assigned")
        if state == "rejected" and not note.strip():
            raise InvalidInput("a rejected registration needs the platform's reason as note")
        stamp = {"applied": "applied_at", "accepted": "accepted_at", "reviewed": "reviewed_at",
                 "publicized": "publicized_at", "coded": "coded_at"}.get(state)
        await cur.execute(
            "UPDATE resource_registrations SET state = %s, note = %s, updated_by = %s,"
            " updated_at = %s, registration_code = coalesce(%s, registration_code)"
            + (f", {stamp} = %s" if stamp else "") + " WHERE resource_code = %s RETURNING *",
            (state, note, principal.name, now, (registration_code or None) if state == "coded"
             else None, *((now,) if stamp else ()), code))
        return await cur.fetchone()


_EXPORT = """
SELECT r.code, r.name, r.summary, r.provider_id, dep.name AS provider_name, r.format,
    r.items, r.row_count, r.update_cycle, r.sharing_type, r.sharing_conditions,
    r.open_to_public, r.quality_score, r.published_on, s.name AS system_name,
    (SELECT max((i->>'sensitivity')::int) FROM jsonb_array_elements(r.items) i) AS sensitivity,
    coalesce(g.state, 'draft') AS state, g.applied_at, g.accepted_at, g.reviewed_at,
    g.publicized_at, g.coded_at, g.registration_code, coalesce(g.note, '') AS note
FROM resources r JOIN departments dep ON dep.id = r.provider_id
LEFT JOIN systems s ON s.id = r.system_id
LEFT JOIN resource_registrations g ON g.resource_code = r.code
WHERE {where} ORDER BY r.code
"""


async def entries(conn: AsyncConnection, state: str | None = None,
                  provider_id: str | None = None) -> list[dict]:
    where = ["true"]
    if state is not None:
        where.append("coalesce(g.state, 'draft') = %(state)s")
    if provider_id is not None:
        where.append("r.provider_id = %(provider_id)s")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_EXPORT.format(where=" AND ".join(where)),
                          {"state": state, "provider_id": provider_id})
        return await cur.fetchall()


def _date(value) -> str:
    return value.date().isoformat() if value else ""


# the national platform's fields, as the 登记 forms name them
HEADERS = ("登记主体", "登记主体代码", "数据资源名称", "目录资源代码", "数据资源摘要", "数据来源",
           "数据格式", "数据项", "数据规模(条)", "更新频率", "共享属性", "共享条件或不予共享依据",
           "开放属性", "数据质量评分", "最高敏感级别", "登记状态", "申请日期", "受理日期",
           "审核日期", "公示日期", "赋码日期", "登记编码", "备注")


def platform_row(e: dict) -> dict[str, object]:
    """One entry in the national platform's fields (HEADERS)."""
    items = "；".join(
        f"{i.get('title') or i['name']}({i['name']},{i['type']}"
        + (f",数据元{i['element_id']}" if i.get("element_id") else "") + ")" for i in e["items"])
    values = (
        e["provider_name"], e["provider_id"], e["name"], e["code"], e["summary"],
        e["system_name"] or "", e["format"], items,
        "" if e["row_count"] is None else e["row_count"],
        CYCLE_NAMES.get(e["update_cycle"], e["update_cycle"]), SHARING_NAMES[e["sharing_type"]],
        e["sharing_conditions"], "开放" if e["open_to_public"] else "不开放",
        "" if e["quality_score"] is None else float(e["quality_score"]),
        "" if e["sensitivity"] is None else e["sensitivity"], STATE_NAMES[e["state"]],
        _date(e["applied_at"]), _date(e["accepted_at"]), _date(e["reviewed_at"]),
        _date(e["publicized_at"]), _date(e["coded_at"]), e["registration_code"] or "", e["note"])
    return dict(zip(HEADERS, values, strict=True))
