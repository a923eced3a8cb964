"""A platform alarm from a gateway's status: readings dropped by its full local queue.

The agent counts what its queue dropped (`counters.dropped_readings` of its status); a
counter nobody watches let 4,980 readings go unnoticed (issue #22). Whoever records a status
(the API) calls `note_gateway_status` in the same transaction: when the counter grew since
the last online status, every device of the gateway gets an alarm of the platform rule
`platform.gateway_dropped_readings` (migration 059), with the usual lifecycle: repeated
drops fold into the open alarm, a person acknowledges and clears it. Every device, because
the queue drops whole batches of all the gateway's devices: each owner learns its data has a
hole.
"""

from __future__ import annotations

import logging

from psycopg import AsyncConnection

from cityops import wire
from ingestion.alarms import raise_alarm

log = logging.getLogger(__name__)

RULE_ID = "platform.gateway_dropped_readings"
SEVERITY = "major"
REGROUP_S = 300.0


async def note_gateway_status(conn: AsyncConnection, gateway: str, status: wire.Status) -> int:
    """Raise the alarm if the gateway dropped readings since its last online status; returns
    how many it dropped. A will (offline) carries the counter of connect time: not used."""
    now = status.counters.get("dropped_readings")
    if status.state is not wire.GatewayState.ONLINE or now is None:
        return 0
    cur = await conn.execute(
        "SELECT dropped_readings FROM gateways WHERE id = %s FOR UPDATE", (gateway,))
    row = await cur.fetchone()
    if row is None or row[0] == now:
        return 0
    # smaller than before: the queue file was made anew and counts from zero again
    dropped = now - row[0] if now > row[0] else now
    await conn.execute("UPDATE gateways SET dropped_readings = %s WHERE id = %s", (now, gateway))
    if dropped <= 0:
        return 0
    cur = await conn.execute("SELECT id FROM devices WHERE gateway_id = %s ORDER BY id",
                             (gateway,))
    devices = [r[0] for r in await cur.fetchall()]
    message = (f"gateway {gateway} dropped {dropped} readings ingestion had not confirmed: "
               "its local queue was full (broker or ingestion unreachable too long); this "
               "device's readings of that time may be missing")
    async with conn.cursor() as alarm_cur:
        for device in devices:
            await raise_alarm(alarm_cur, rule_id=RULE_ID, severity=SEVERITY, regroup_s=REGROUP_S,
                              device_id=device, point_id=None, value=float(dropped),
                              reading_at=None, message=message)
    log.warning("gateway %s dropped %d readings (local queue full): alarm on %d devices",
                gateway, dropped, len(devices))
    return dropped
