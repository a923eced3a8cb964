"""New notifications to deliveries: the subscriptions whose kinds, severity, departments and role
match; quiet hours put a non-critical delivery's first attempt at the end of the quiet period."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from psycopg import AsyncConnection

from cityevents.calendar import COUNTY_TZ
from notifications.sources import SEVERITIES

_MATCHES = """
    SELECT n.id, s.id, s.channel_id, s.recipients, n.severity, s.quiet_start, s.quiet_end
    FROM notifications n
    JOIN notification_subscriptions s ON n.kind = ANY(s.kinds)
     AND array_position(%(order)s::text[], n.severity)
         >= array_position(%(order)s::text[], s.min_severity)
     AND (s.departments IS NULL OR n.department_id = ANY(s.departments))
     AND (s.role IS NULL OR s.role = ANY(n.audience))
    JOIN notification_channels c ON c.id = s.channel_id AND c.enabled
    WHERE n.id = ANY(%(ids)s)"""


def quiet_until(now: datetime, start: time | None, end: time | None) -> datetime | None:
    """The end of the quiet period `now` falls in (county time), or None; 22:00-07:00 wraps."""
    if start is None or end is None or start == end:
        return None
    local = now.astimezone(COUNTY_TZ)
    t = local.time()
    inside = start <= t < end if start < end else (t >= start or t < end)
    if not inside:
        return None
    until = local.replace(hour=end.hour, minute=end.minute, second=end.second, microsecond=0)
    return until if until > local else until + timedelta(days=1)


async def fan_out(conn: AsyncConnection, ids: list[int], now: datetime) -> int:
    """Queue a delivery per matching subscription; returns how many were queued."""
    if not ids:
        return 0
    async with conn.cursor() as cur:
        await cur.execute(_MATCHES, {"ids": ids, "order": list(SEVERITIES)})
        rows = await cur.fetchall()
        for nid, sid, channel, recipients, severity, q_start, q_end in rows:
            held = None if severity == "critical" else quiet_until(now, q_start, q_end)
            await cur.execute(
                "INSERT INTO notification_deliveries (notification_id, subscription_id,"
                " channel_id, recipients, next_at, held) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (nid, sid, channel, recipients, held or now, held is not None))
    return len(rows)
