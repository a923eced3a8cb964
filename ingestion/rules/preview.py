"""What a rule would have raised on the last 24 hours, computed in SQL over the 1-minute
rollups (min and max per minute: one row per point-minute instead of every reading).

- threshold: each minute is beyond the limit (its max above `above`, its min below `below`),
  back past the clear level, or in between (hysteresis: no change). An alarm is raised where a
  beyond minute follows a cleared one (or starts the window), and counted if it stayed beyond
  for at least `for_s` (whole minutes).
- offline: a gap longer than `after_s` between two minutes with readings of the device, or
  since its last one; a device with no reading in the window counts one.

It is an estimate: readings within a minute are folded (a spike shorter than the rule's
`for_s` shows as its minute), `regroup_s` (reopening) is not applied, and the rollups lag
the newest readings by up to their refresh period. Rate-of-change and anomaly rules need
the raw readings and are not previewed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cityops.errors import InvalidInput
from ingestion.rules.model import OfflineRule, Rule, ThresholdRule

WINDOW = timedelta(hours=24)

_TARGET = """
    (cardinality(%(devices)s::text[]) = 0 OR d.id = ANY(%(devices)s::text[]))
    AND (%(profile)s::text IS NULL OR d.profile_id = %(profile)s)
    AND (%(gateway)s::text IS NULL OR d.gateway_id = %(gateway)s)"""

_THRESHOLD = f"""
WITH pts AS (
    SELECT p.id, p.device_id FROM points p JOIN devices d ON d.id = p.device_id
    WHERE p.name = %(point)s AND {_TARGET}
), marked AS (
    SELECT pts.device_id, r.bucket, r.max AS hi, r.min AS lo,
        CASE WHEN %(above)s::float8 IS NOT NULL THEN
                 CASE WHEN r.max > %(above)s THEN 'b' WHEN r.max <= %(clear)s THEN 'c' END
             ELSE CASE WHEN r.min < %(below)s THEN 'b' WHEN r.min >= %(clear)s THEN 'c' END
        END AS state
    FROM rollup_1m r JOIN pts ON pts.id = r.point_id
    WHERE r.bucket >= %(since)s AND r.bucket < %(until)s AND r.count > 0
), decided AS (
    SELECT *, lag(state) OVER (PARTITION BY device_id ORDER BY bucket) AS before
    FROM marked WHERE state IS NOT NULL
), numbered AS (
    SELECT *, count(*) FILTER (WHERE state = 'b' AND before IS DISTINCT FROM 'b')
              OVER (PARTITION BY device_id ORDER BY bucket) AS episode
    FROM decided
), episodes AS (
    SELECT device_id, episode, min(bucket) AS start_at, count(*) AS minutes,
           max(hi) AS hi, min(lo) AS lo
    FROM numbered WHERE state = 'b' GROUP BY device_id, episode
)
SELECT device_id AS device, count(*) AS alarms, min(start_at) AS first_at,
       max(start_at) AS last_at, sum(minutes)::int AS minutes,
       CASE WHEN %(above)s::float8 IS NOT NULL THEN max(hi) ELSE min(lo) END AS peak
FROM episodes WHERE minutes * 60 >= %(for_s)s
GROUP BY device_id ORDER BY device_id
"""

_OFFLINE = f"""
WITH devs AS (
    SELECT d.id FROM devices d WHERE {_TARGET}
), mins AS (
    SELECT DISTINCT p.device_id, r.bucket FROM rollup_1m r
    JOIN points p ON p.id = r.point_id JOIN devs ON devs.id = p.device_id
    WHERE r.bucket >= %(since)s AND r.bucket < %(until)s AND r.count > 0
), gaps AS (
    SELECT device_id, lag(bucket) OVER (PARTITION BY device_id ORDER BY bucket) AS last_seen,
           bucket AS back_at FROM mins
    UNION ALL SELECT device_id, max(bucket), %(until)s FROM mins GROUP BY device_id
    UNION ALL SELECT devs.id, %(since)s, %(until)s FROM devs
    WHERE NOT EXISTS (SELECT FROM mins WHERE mins.device_id = devs.id)
)
SELECT device_id AS device, count(*) AS alarms,
       min(last_seen + make_interval(secs => %(after_s)s)) AS first_at,
       max(last_seen + make_interval(secs => %(after_s)s)) AS last_at,
       (sum(extract(epoch FROM back_at - last_seen)) / 60)::int AS minutes, NULL::float8 AS peak
FROM gaps
WHERE last_seen IS NOT NULL
  AND back_at - last_seen > make_interval(secs => %(after_s)s + 60)
GROUP BY device_id ORDER BY device_id
"""


async def preview(conn: AsyncConnection, rule: Rule, until: datetime | None = None) -> dict:
    """{rule, kind, since, until, basis, alarms, devices: [{device, alarms, first_at,
    last_at, minutes, peak}]} for the 24 hours before `until` (default now)."""
    until = until or datetime.now(UTC)
    target = rule.target
    params = {"devices": list(target.devices), "profile": target.profile,
              "gateway": target.gateway, "since": until - WINDOW, "until": until}
    if isinstance(rule, ThresholdRule):
        limit = rule.above if rule.above is not None else rule.below
        params |= {"point": target.point, "above": rule.above, "below": rule.below,
                   "clear": rule.clear if rule.clear is not None else limit,
                   "for_s": rule.for_s}
        query = _THRESHOLD
    elif isinstance(rule, OfflineRule):
        params |= {"after_s": rule.after_s}
        query = _OFFLINE
    else:
        raise InvalidInput(f"kind: a preview computes threshold and offline rules; a"
                           f" {rule.kind} rule needs the raw readings")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        devices = await cur.fetchall()
    return {"rule": rule.id, "kind": rule.kind, "since": params["since"], "until": until,
            "basis": "rollup_1m", "alarms": sum(d["alarms"] for d in devices),
            "devices": devices}
