"""The dropped-readings alarm from a gateway's status counters (issue #22 item 11), against
the real database: raised once per growth of the counter, on every device of the gateway,
folded into the open alarm when it grows again; a will's stale counter changes nothing."""

from __future__ import annotations

import time
import uuid

import psycopg

from cityops import wire
from ingestion.queue_alarms import RULE_ID, note_gateway_status
from tests.integration.ingest_helpers import register


def _status(dropped: int, state: str = "online") -> wire.Status:
    return wire.Status(state=wire.GatewayState(state), counters={"dropped_readings": dropped},
                       ts=int(time.time() * 1000))


async def _note(database_url: str, gateway: str, status: wire.Status) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn, conn.transaction():
        return await note_gateway_status(conn, gateway, status)


def _alarms(database_url: str, gateway: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT a.device_id, a.state, a.count, a.value FROM alarms a"
            " JOIN devices d ON d.id = a.device_id WHERE d.gateway_id = %s AND a.rule_id = %s"
            " ORDER BY 1", (gateway, RULE_ID)).fetchall()


async def test_drop_counter_growth_raises_and_repeats_the_alarm(database_url: str) -> None:
    gateway = f"gw-{uuid.uuid4().hex[:6]}"
    register(database_url, gateway, {f"{gateway}-a": ["p"], f"{gateway}-b": ["p"]})
    a, b = f"{gateway}-a", f"{gateway}-b"

    assert await _note(database_url, gateway, _status(0)) == 0
    assert _alarms(database_url, gateway) == []
    assert await _note(database_url, gateway, _status(120)) == 120
    assert _alarms(database_url, gateway) == [(a, "active", 1, 120.0), (b, "active", 1, 120.0)]

    # the will carries the counter of connect time: ignored, and the same counter again too
    assert await _note(database_url, gateway, _status(0, "offline")) == 0
    assert await _note(database_url, gateway, _status(120)) == 0
    assert _alarms(database_url, gateway)[0][2] == 1

    assert await _note(database_url, gateway, _status(200)) == 80
    assert _alarms(database_url, gateway)[0][2:] == (2, 80.0)
    # smaller: a queue file made anew counts from zero
    assert await _note(database_url, gateway, _status(30)) == 30
    assert _alarms(database_url, gateway)[0][2:] == (3, 30.0)
    with psycopg.connect(database_url) as conn:
        kinds = conn.execute(
            "SELECT array_agg(e.kind ORDER BY e.id) FROM alarm_events e JOIN alarms l"
            " ON l.id = e.alarm_id WHERE l.device_id = %s", (a,)).fetchone()[0]
    assert kinds == ["raised", "repeated", "repeated"], "each step is in the alarm's history"
