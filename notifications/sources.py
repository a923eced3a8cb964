"""Where notifications come from: the platform's own tables, read by the worker (an outbox read
by polling, so the event workflow, the alarm engine, the catalogue and quality need no edit and
never wait on a channel). Each source inserts one `notifications` row per (kind, ref); the unique
key makes a second pass find nothing new. Only recent or still-open objects are looked at, so a
first start does not announce the county's whole history."""

from __future__ import annotations

from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityevents import clock
from cityevents.calendar import WorkCalendar

KINDS = ("event_dispatched", "event_light_yellow", "event_light_red", "critical_alarm",
         "alarm_unacknowledged", "data_request", "quality_task", "report_ready",
         "event_reminder", "event_escalated")
# not a login role: a notification for the department's leader (分管领导), reached through a
# subscription whose role is this and whose recipients are the leader's address or phone
LEADER_AUDIENCE = "department_leader"
SEVERITIES = ("warning", "minor", "major", "critical")  # ascending

_INSERT = ("INSERT INTO notifications (kind, ref, severity, department_id, audience, title, body)"
           " {select} ON CONFLICT (kind, ref) DO NOTHING RETURNING id")

_SOURCES = {
    "event_dispatched": """
        SELECT 'event_dispatched', t.id::text,
               CASE e.urgency WHEN 'urgent' THEN 'major' ELSE 'minor' END, t.department_id,
               ARRAY['department_staff', 'dispatcher'],
               CASE t.action WHEN 'dispatch' THEN '案件派遣 #' ELSE '协办派遣 #' END
               || e.id || ' ' || c.major || '/' || c.minor,
               e.description || CASE WHEN e.address <> '' THEN '（' || e.address || '）'
                                     ELSE '' END
               || CASE WHEN t.action = 'cohandler_add' AND t.note <> ''
                       THEN '；协办要求：' || t.note ELSE '' END
        FROM event_transitions t JOIN events e ON e.id = t.event_id
        JOIN event_categories c ON c.code = e.category_code
        -- a co-handling department (协办) is told as the lead is: its task is a dispatch
        WHERE t.action IN ('dispatch', 'cohandler_add') AND t.at > %(since)s""",
    # the supervision sweep (cityevents/service.py sweep) supervises an event whose light is red
    "event_light_red": """
        SELECT 'event_light_red', t.id::text, 'major', e.department_id,
               ARRAY['dispatcher', 'operator', 'department_staff'],
               '案件超时（红灯）#' || e.id, e.description
        FROM event_transitions t JOIN events e ON e.id = t.event_id
        WHERE t.action = 'supervise' AND t.actor = 'system' AND t.at > %(since)s""",
    # 催办 (cityevents/reminders.py): every reminder reaches the department working the task;
    # an escalated one (the task's Nth, or overdue) reaches its leader as well
    "event_reminder": """
        SELECT 'event_reminder', r.id::text,
               CASE WHEN r.escalated THEN 'major' ELSE 'minor' END, r.department_id,
               ARRAY['department_staff', 'dispatcher'],
               '催办 #' || e.id || CASE WHEN r.task_id IS NULL THEN '（主办）' ELSE '（协办）' END
               || ' 第' || r.number || '次',
               CASE WHEN r.note <> '' THEN r.note || '；' ELSE '' END || e.description
        FROM event_reminders r JOIN events e ON e.id = r.event_id WHERE r.at > %(since)s""",
    "event_escalated": """
        SELECT 'event_escalated', r.id::text, 'major', r.department_id,
               ARRAY['department_leader', 'dispatcher'],
               '催办升级 #' || e.id || ' 第' || r.number || '次'
               || CASE r.reason WHEN 'overdue' THEN '（已超时）' ELSE '' END,
               CASE WHEN r.note <> '' THEN r.note || '；' ELSE '' END || e.description
        FROM event_reminders r JOIN events e ON e.id = r.event_id
        WHERE r.escalated AND r.at > %(since)s""",
    "critical_alarm": """
        SELECT 'critical_alarm', a.id::text, 'critical', d.department_id,
               ARRAY['operator', 'ops_engineer', 'dispatcher'],
               '严重告警 ' || a.device_id, a.message
        FROM alarms a JOIN devices d ON d.id = a.device_id
        WHERE a.severity = 'critical' AND a.state <> 'cleared' AND a.first_seen_at > %(since)s""",
    # escalation: still not acknowledged after the configured minutes
    "alarm_unacknowledged": """
        SELECT 'alarm_unacknowledged', a.id::text, 'critical', d.department_id,
               ARRAY['operator', 'ops_engineer', 'dispatcher', 'admin'],
               '严重告警未确认（升级）' || a.device_id,
               a.message || '；已持续 ' || floor(extract(epoch FROM %(now)s - a.first_seen_at)
                                                 / 60) || ' 分钟未确认'
        FROM alarms a JOIN devices d ON d.id = a.device_id
        WHERE a.severity = 'critical' AND a.state = 'active'
          AND a.first_seen_at <= %(now)s - %(escalate)s AND a.first_seen_at > %(since)s""",
    "data_request": """
        SELECT 'data_request', r.id::text, 'minor', s.provider_id,
               ARRAY['data_admin', 'department_staff'],
               '数据申请待审核 ' || s.code, r.applicant || '：' || r.purpose
        FROM access_requests r JOIN resources s ON s.code = r.resource_code
        WHERE r.state = 'with_provider'""",
    "quality_task": """
        SELECT 'quality_task', t.id::text, 'minor', t.department_id,
               ARRAY['data_admin', 'department_staff'],
               '数据质量整改 ' || t.dataset_id, t.rule || '：' || t.failed || ' 条不合格'
        FROM quality.tasks t WHERE t.state = 'open'""",
    # 城市运行分析报告 (indicators/reports): each generation (a regenerated report again) goes
    # to its subscribers, county leaders first, with where to download it
    "report_ready": """
        SELECT 'report_ready', r.id || ':' || extract(epoch FROM r.generated_at)::bigint,
               'minor', NULL, ARRAY['viewer', 'admin', 'dispatcher', 'operator', 'data_admin'],
               r.title,
               '报告已生成，可在控制台“决策 → 分析报告”或 /v1/reports/' || r.id
               || '/pdf（DOCX、XLSX 同址）下载'
        FROM reports r WHERE r.generated_at > %(since)s""",
}


async def collect(conn: AsyncConnection, cal: WorkCalendar, now: datetime,
                  escalate_after: timedelta, lookback: timedelta = timedelta(days=1)
                  ) -> list[int]:
    """Insert what is new since the last pass; returns the new notifications' ids."""
    args = {"now": now, "since": now - lookback, "escalate": escalate_after}
    new: list[int] = []
    async with conn.cursor() as cur:
        for select in _SOURCES.values():
            await cur.execute(_INSERT.format(select=select), args)
            new += [row[0] for row in await cur.fetchall()]
    return new + await _yellow_lights(conn, cal, now)


async def _yellow_lights(conn: AsyncConnection, cal: WorkCalendar, now: datetime) -> list[int]:
    """Lights are computed (working calendar), not stored: look at open events with a clock
    past 80 % of a limit; one notification per event step."""
    # the events already announced for their current step are left out in SQL: each pass
    # computes the clocks of the others only
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT e.*, r.ref FROM events e,"
            " LATERAL (SELECT e.id || ':' || coalesce(e.step, '') || ':'"
            "          || extract(epoch FROM e.step_started_at)::bigint AS ref) r"
            " WHERE e.state NOT IN ('closed', 'cancelled', 'suspended') AND NOT e.supervised"
            " AND (e.step_deadline_at IS NOT NULL OR e.total_deadline_at IS NOT NULL)"
            " AND NOT EXISTS (SELECT 1 FROM notifications n"
            "                 WHERE n.kind = 'event_light_yellow' AND n.ref = r.ref)")
        events = await cur.fetchall()
        new = []
        for e in events:
            if clock.view(cal, e, now).light != "yellow":
                continue
            await cur.execute(_INSERT.format(select="SELECT %s, %s, %s, %s, %s, %s, %s"), (
                "event_light_yellow", e["ref"], "minor", e["department_id"],
                ["dispatcher", "department_staff"], f"案件即将超时（黄灯）#{e['id']}",
                e["description"]))
            new += [row["id"] for row in await cur.fetchall()]
    return new
